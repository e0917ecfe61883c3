//! Limits a user runs into, answered with a sentence: gRPC's 4 MiB message limit.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_over_the_message_limit_is_refused_with_what_to_do_and_nothing_applied() {
    let c = TestCluster::start(Options::process()).await;
    // Six ConfigMaps of 900 KiB each: every one valid, 5.3 MiB together.
    let value = "x".repeat(900 * 1024);
    let manifest: String = (0..6)
        .map(|i| {
            format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big-{i}}}\ndata:\n  blob: {value}\n")
        })
        .collect();
    let path = c.data_dir.join("big.yaml");
    std::fs::write(&path, manifest).unwrap();
    let out = c.ctl(&["apply", "-f", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kube9d accepts at most 4 MiB in one call")
            && stderr.contains("split it into smaller files"),
        "{stderr}"
    );
    assert!(!stderr.contains("decoded message length"), "{stderr}");
    let listed = c.ctl_ok(&["get", "configmaps", "-o", "name"]);
    assert_eq!(listed, "", "nothing applied");

    // One at a time they go in.
    let one = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big-0}}\ndata:\n  blob: {value}\n"
    );
    c.apply(&one);
    assert_eq!(
        c.ctl_ok(&["get", "configmaps", "-o", "name"]),
        "configmap/big-0\n"
    );
    c.finish().await;
}
