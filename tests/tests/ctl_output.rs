//! kubectl's output and argument habits in kube9ctl, on a real cluster (nodes as processes):
//! `-o jsonpath`, `-o custom-columns`, `--no-headers`, `--show-labels`, `-L`, `--sort-by`,
//! `get po,no`, `get all`, `KIND/NAME` arguments, and `get -o name | xargs delete`.

mod support;

use kube9_proto::pb::PodPhase;
use std::process::{Command, Stdio};
use support::*;

/// A pod running `sleep`, with these labels.
fn labelled_pod(name: &str, labels: &[(&str, &str)]) -> String {
    let mut yaml = pod_yaml(name, "100m", "sleep 1000");
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: {v}\n"))
        .collect();
    yaml = yaml.replace("    app: test\n", &labels);
    yaml
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Words of each line, for comparing tables without their spacing.
fn words(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_columns_and_table_flags_print_what_kubectl_would() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    // Created in this order, a second apart: creation order is not name order.
    c.apply(&labelled_pod("zeta", &[("app", "db")]));
    tokio::time::sleep(secs(1) + std::time::Duration::from_millis(100)).await;
    c.apply(&labelled_pod("alpha", &[("app", "web"), ("tier", "front")]));
    for pod in ["zeta", "alpha"] {
        c.wait_pod_phase(pod, PodPhase::Running, secs(30)).await;
    }

    // -o jsonpath with range, on the List of pods.
    let text = c.ctl_ok(&[
        "get",
        "pods",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#,
    ]);
    assert_eq!(text, "alpha\tRunning\nzeta\tRunning\n");
    let text = c.ctl_ok(&["get", "pods", "-o=jsonpath={.items[*].metadata.name}"]);
    assert_eq!(text, "alpha zeta");
    let text = c.ctl_ok(&[
        "get",
        "pods",
        "-o",
        r#"jsonpath={.items[?(@.metadata.labels.app=="db")].metadata.name}"#,
    ]);
    assert_eq!(text, "zeta");
    // One object by name: the template runs on the object itself.
    let text = c.ctl_ok(&[
        "get",
        "pod/alpha",
        "-o",
        "jsonpath={.metadata.name} on {.spec.nodeName}: {.spec.containers[*].name}",
    ]);
    assert_eq!(text, "alpha on n1: main");
    let text = c.ctl_ok(&[
        "get",
        "pods",
        "-o",
        "jsonpath-as-json={.items[*].metadata.name}",
    ]);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value, serde_json::json!(["alpha", "zeta"]));

    // -o custom-columns, with and without headers.
    let text = c.ctl_ok(&[
        "get",
        "pods",
        "-o",
        "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName,TIER:.metadata.labels.tier",
    ]);
    assert_eq!(
        text,
        "NAME    NODE   TIER\n\
         alpha   n1     front\n\
         zeta    n1     <none>\n"
    );
    let text = c.ctl_ok(&[
        "get",
        "pods",
        "--no-headers",
        "-o",
        "custom-columns=NAME:.metadata.name",
    ]);
    assert_eq!(text, "alpha\nzeta\n");
    let file = std::env::temp_dir().join(format!("kube9-columns-{}", std::process::id()));
    std::fs::write(&file, "NAME   PHASE\n.metadata.name   .status.phase\n").unwrap();
    let text = c.ctl_ok(&[
        "get",
        "pods",
        "-o",
        &format!("custom-columns-file={}", file.display()),
    ]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        words(&text),
        [["NAME", "PHASE"], ["alpha", "Running"], ["zeta", "Running"]]
    );

    // --no-headers on the table.
    let text = c.ctl_ok(&["get", "pods", "--no-headers"]);
    let rows = words(&text);
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(
        (rows[0][0].as_str(), rows[1][0].as_str()),
        ("alpha", "zeta")
    );
    assert!(!text.contains("NAME"), "{text}");

    // --show-labels and -L.
    let text = c.ctl_ok(&["get", "pods", "--show-labels"]);
    let rows = words(&text);
    assert_eq!(rows[0].last().map(String::as_str), Some("LABELS"), "{text}");
    assert_eq!(
        rows[1].last().map(String::as_str),
        Some("app=web,tier=front")
    );
    assert_eq!(rows[2].last().map(String::as_str), Some("app=db"));
    let text = c.ctl_ok(&["get", "pods", "-L", "app,tier"]);
    let header = text.lines().next().unwrap();
    assert!(header.ends_with("AGE   APP   TIER"), "{text}");
    let rows = words(&text);
    assert_eq!(rows[1][rows[1].len() - 2..], ["web", "front"]);
    // zeta has no tier: its cell is blank, so its last word is the app.
    assert_eq!(rows[2].last().map(String::as_str), Some("db"));
    let text = c.ctl_ok(&["get", "pods", "-L", "app", "-L", "tier", "--no-headers"]);
    assert_eq!(
        words(&text)[0][words(&text)[0].len() - 2..],
        ["web", "front"]
    );

    // --sort-by.
    let text = c.ctl_ok(&[
        "get",
        "pods",
        "--sort-by=.metadata.creationTimestamp",
        "-o",
        "name",
    ]);
    assert_eq!(text, "pod/zeta\npod/alpha\n");
    let text = c.ctl_ok(&[
        "get",
        "pods",
        "--sort-by",
        "{.metadata.name}",
        "--no-headers",
    ]);
    assert_eq!(words(&text)[0][0], "alpha");
    let text = c.ctl_ok(&[
        "get",
        "pods",
        "--sort-by",
        ".metadata.creationTimestamp",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(text, "zeta alpha");
    let out = c.ctl(&["get", "pods", "--sort-by", ".spec.nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("couldn't find any field with path"),
        "{}",
        stderr(&out)
    );

    // Bad templates and column specs: a message, non-zero, nothing on stdout.
    for bad in [
        "jsonpath={.items[*]",
        "jsonpath={range .items[*]}{.x}",
        "jsonpath=",
        "custom-columns=NAME",
        "custom-columns=NAME:.items[",
        "go-template={{.kind}}",
    ] {
        let out = c.ctl(&["get", "pods", "-o", bad]);
        assert_ne!(out.status.code(), Some(0), "-o {bad}");
        assert_eq!(stdout(&out), "", "-o {bad}");
        assert!(stderr(&out).contains("error"), "-o {bad}: {}", stderr(&out));
    }
    let out = c.ctl(&["get", "pods", "-o", "jsonpath={.items[5]}"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("array index out of bounds"),
        "{}",
        stderr(&out)
    );

    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_kinds_all_and_kind_slash_name_arguments() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    c.apply(&labelled_pod("web", &[("app", "web")]));
    c.wait_pod_phase("web", PodPhase::Running, secs(30)).await;
    c.ctl_ok(&["create", "configmap", "settings", "--from-literal=a=1"]);

    // get po,no: a table per kind, NAMEs as kind/name, a blank line between.
    let text = c.ctl_ok(&["get", "po,no"]);
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{text}");
    assert!(blocks[0].starts_with("NAME "), "{text}");
    assert!(blocks[0].contains("\npod/web "), "{text}");
    assert!(blocks[1].starts_with("NAME "), "{text}");
    assert!(blocks[1].contains("\nnode/n1 "), "{text}");
    assert!(blocks[1].contains("Healthy"), "{text}");
    let text = c.ctl_ok(&["get", "pods,configmaps", "-o", "name"]);
    assert_eq!(text, "pod/web\nconfigmap/settings\n");
    let json = c.ctl_json(&["get", "po,no"]);
    assert_eq!(json["kind"], "List");
    let kinds: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Pod", "Node"]);
    let text = c.ctl_ok(&[
        "get",
        "po,no",
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.name} {end}",
    ]);
    assert_eq!(text, "Pod/web Node/n1 ");

    // get all: the namespace's pods, as kind/name.
    let text = c.ctl_ok(&["get", "all"]);
    let rows = words(&text);
    assert_eq!(rows[0][0], "NAME");
    assert_eq!(rows[1][0], "pod/web");
    assert_eq!(rows.len(), 2, "{text}");

    // KIND/NAME arguments: get, describe, logs.
    let text = c.ctl_ok(&["get", "pod/web", "node/n1", "--no-headers"]);
    let rows = words(&text);
    assert_eq!(
        (rows[0][0].as_str(), rows[1][0].as_str()),
        ("pod/web", "node/n1")
    );
    let json = c.ctl_json(&["get", "po/web"]);
    assert_eq!(json["kind"], "Pod");
    assert!(c.ctl_ok(&["describe", "pod/web"]).contains("web"));
    let out = c.ctl(&["logs", "pod/web"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = c.ctl(&["get", "pod", "pod/web"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains(
            "there is no need to specify a resource type as a separate argument when passing \
             arguments in resource/name form"
        ),
        "{}",
        stderr(&out)
    );
    // A missing one is reported; the others are still printed.
    let out = c.ctl(&["get", "pod/web", "pod/nope", "-o", "name"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "pod/web\n");
    assert!(
        stderr(&out).contains("\"nope\" not found"),
        "{}",
        stderr(&out)
    );

    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pods_o_name_piped_to_xargs_delete_deletes_every_pod() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    let names = ["del1", "del2", "del3"];
    for name in names {
        c.apply(&pod_yaml(name, "100m", "sleep 1000"));
    }
    for name in names {
        c.wait_pod_phase(name, PodPhase::Running, secs(30)).await;
    }
    let ctl = bin("kube9ctl");
    let script = format!(
        "'{ctl}' get pods -o name | xargs '{ctl}' delete",
        ctl = ctl.display()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&script);
    for var in CLIENT_VARS {
        cmd.env_remove(var);
    }
    let out = cmd
        .env("KUBE9_CONFIG", c.config_path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{script}\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        "pod \"del1\" deleted\npod \"del2\" deleted\npod \"del3\" deleted\n"
    );
    let out = c.ctl(&["get", "pods", "-o", "name"]);
    assert_eq!(stdout(&out), "");
    assert!(c.pods().await.is_empty());
    c.finish().await;
}
