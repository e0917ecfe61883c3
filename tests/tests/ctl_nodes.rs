//! Daily node and metadata work with kube9ctl, on a real cluster (nodes as processes):
//! `cordon`, `uncordon`, `drain` (every pod moves, and never runs twice), `label` and
//! `annotate` (kubectl's --overwrite rule, Kubernetes' key rules), `version` with the server's,
//! `apply --dry-run=server|client` and `apply -o name|json`, and what `--server` refuses.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use kube9_proto::pb::PodPhase;
use support::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A pod whose process carries `marker` as an argument of its own (see [`marked_copies`]).
fn marked_pod(name: &str, cpu: &str, marker: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    command: [\"sh\", \"-c\", \"while true; do sleep 1; done\", \"{marker}\"]\n    resources:\n      requests:\n        cpu: \"{cpu}\"\n"
    )
}

/// The row of `get nodes` for `node`, as words.
fn node_row(c: &TestCluster, node: &str) -> Vec<String> {
    let text = c.ctl_ok(&["get", "nodes", "--no-headers"]);
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|w| w.first().map(String::as_str) == Some(node))
        .unwrap_or_else(|| panic!("no row for {node} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_keeps_new_pods_off_and_drain_moves_every_pod_exactly_once() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4"), ("n2", "4")]).await;

    // cordon: shown as kubectl shows it, described, recorded; new pods go elsewhere (best fit
    // would take n1, first by name on a tie).
    assert_eq!(c.ctl_ok(&["cordon", "n1"]), "node/n1 cordoned\n");
    assert_eq!(c.ctl_ok(&["cordon", "n1"]), "node/n1 already cordoned\n");
    assert_eq!(node_row(&c, "n1")[1], "Healthy,SchedulingDisabled");
    assert_eq!(node_row(&c, "n2")[1], "Healthy");
    let described = c.ctl_ok(&["describe", "node", "n1"]);
    assert!(
        described
            .lines()
            .any(|l| l.starts_with("Unschedulable:") && l.ends_with("true")),
        "{described}"
    );
    assert!(described.contains("NodeNotSchedulable"), "{described}");
    let json = c.ctl_json(&["get", "node", "n1"]);
    assert_eq!(json["spec"]["unschedulable"], true);
    c.apply(&pod_yaml("early", "500m", "sleep 1000"));
    c.wait_pod_phase("early", PodPhase::Running, secs(30)).await;
    assert_eq!(c.pod("early").await.node, "n2");

    assert_eq!(c.ctl_ok(&["uncordon", "n1"]), "node/n1 uncordoned\n");
    assert_eq!(node_row(&c, "n1")[1], "Healthy");

    // Three marked pods: best fit puts them all on n2 (the least free CPU that fits).
    let markers: Vec<String> = (1..=3)
        .map(|i| format!("k9drain{}m{i}", std::process::id()))
        .collect();
    for (i, marker) in markers.iter().enumerate() {
        c.apply(&marked_pod(&format!("m{}", i + 1), "1", marker));
    }
    for i in 1..=3 {
        let name = format!("m{i}");
        c.wait_pod_phase(&name, PodPhase::Running, secs(30)).await;
        assert_eq!(c.pod(&name).await.node, "n2");
    }
    for marker in &markers {
        c.wait_for("one copy of each marked pod", secs(10), || async {
            (marked_copies(marker) == 1).then_some(())
        })
        .await;
    }

    // While drain runs, no marked pod ever runs twice.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, most, markers) = (stop.clone(), most.clone(), markers.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for marker in &markers {
                    most.fetch_max(marked_copies(marker), Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let out = c.ctl(&["drain", "n2", "--timeout=60s"]);
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.starts_with("node/n2 cordoned\n"), "{text}");
    for pod in ["early", "m1", "m2", "m3"] {
        assert!(
            text.contains(&format!("evicting pod default/{pod}\n")),
            "{text}"
        );
        assert!(text.contains(&format!("pod/{pod} evicted\n")), "{text}");
        assert!(
            text.contains(&format!("pod/{pod} running on n1\n")),
            "{text}"
        );
    }
    assert!(text.ends_with("node/n2 drained\n"), "{text}");
    assert_eq!(
        most.load(Ordering::Relaxed),
        1,
        "a pod ran twice during the drain"
    );

    for pod in ["early", "m1", "m2", "m3"] {
        let p = c.pod(pod).await;
        assert_eq!(
            (p.node.as_str(), p.phase()),
            ("n1", PodPhase::Running),
            "{pod}"
        );
        assert_eq!(p.reschedules, 1, "{pod}");
    }
    for marker in &markers {
        assert_eq!(marked_copies(marker), 1, "{marker}");
    }
    assert!(c.node("n2").await.pods.is_empty());

    // The drained node stays cordoned: a pod only it has room for waits.
    assert_eq!(node_row(&c, "n2")[1], "Healthy,SchedulingDisabled");
    c.apply(&pod_yaml("late", "1", "sleep 1000"));
    tokio::time::sleep(secs(1)).await;
    let late = c.pod("late").await;
    assert_eq!(late.phase(), PodPhase::Pending);
    assert!(late.node.is_empty());
    c.ctl_ok(&["uncordon", "n2"]);
    c.wait_pod_phase("late", PodPhase::Running, secs(30)).await;
    assert_eq!(c.pod("late").await.node, "n2");
    c.assert_cpu_invariant().await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_reports_pods_without_room_and_fails_on_timeout() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4"), ("n2", "1")]).await;
    // Ignores SIGTERM: it stops only when its grace period (2 s) ends.
    c.apply(&pod_yaml(
        "stubborn",
        "2",
        "trap '' TERM; while true; do sleep 1; done",
    ));
    c.wait_pod_phase("stubborn", PodPhase::Running, secs(30))
        .await;
    assert_eq!(c.pod("stubborn").await.node, "n1");

    let out = c.ctl(&["drain", "n1", "--timeout=500ms"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("timed out") && err.contains("pod/stubborn"),
        "{err}"
    );

    // Drain again: the pod is off n1, and with no room on n2 it waits Pending, reported.
    let out = c.ctl(&["drain", "n1"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("pod/stubborn evicted\n"), "{text}");
    assert!(
        text.contains("pod/stubborn is Pending: no node has room"),
        "{text}"
    );
    let p = c.pod("stubborn").await;
    assert_eq!(p.phase(), PodPhase::Pending);
    assert!(p.node.is_empty());
    c.ctl_ok(&["uncordon", "n1"]);
    c.wait_pod_phase("stubborn", PodPhase::Running, secs(30))
        .await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_annotate_follow_kubectls_overwrite_rule_and_reject_bad_keys() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(&pod_yaml("web", "100m", "sleep 1000"));
    let labels = |c: &TestCluster| c.ctl_json(&["get", "pod", "web"])["metadata"]["labels"].clone();

    assert_eq!(
        c.ctl_ok(&["label", "pod/web", "env=prod"]),
        "pod/web labeled\n"
    );
    let out = c.ctl(&["label", "pod/web", "env=dev"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--overwrite"), "{}", stderr(&out));
    assert_eq!(labels(&c)["env"], "prod");
    assert_eq!(
        c.ctl_ok(&["label", "pods", "web", "env=dev", "--overwrite"]),
        "pod/web labeled\n"
    );
    assert_eq!(labels(&c)["env"], "dev");
    assert_eq!(
        c.ctl_ok(&["label", "pod/web", "env=dev"]),
        "pod/web not labeled\n"
    );
    // An invalid key or value is refused and nothing of the command is applied.
    for bad in ["bad key=x", "bad-=x", "ok=bad value", "Example.com/x=y"] {
        let out = c.ctl(&["label", "pod/web", "tier=front", bad]);
        assert!(!out.status.success(), "{bad}");
        assert!(
            stderr(&out).contains("invalid label"),
            "{bad}: {}",
            stderr(&out)
        );
    }
    assert!(labels(&c).get("tier").is_none());
    assert_eq!(c.ctl_ok(&["label", "pod/web", "env-"]), "pod/web labeled\n");
    assert!(labels(&c).get("env").is_none());

    // Nodes and namespaces have labels too.
    c.ctl_ok(&["label", "node/n1", "zone=a"]);
    assert_eq!(
        c.ctl_json(&["get", "node", "n1"])["metadata"]["labels"]["zone"],
        "a"
    );
    c.ctl_ok(&["label", "ns", "default", "team=core"]);
    assert_eq!(
        c.ctl_json(&["get", "ns", "default"])["metadata"]["labels"]["team"],
        "core"
    );

    // Annotations: values are free text; keys follow the same rules.
    assert_eq!(
        c.ctl_ok(&["annotate", "pod/web", "note=hello world"]),
        "pod/web annotated\n"
    );
    let out = c.ctl(&["annotate", "pod/web", "note=bye"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--overwrite"));
    c.ctl_ok(&["annotate", "pod/web", "note=bye", "--overwrite"]);
    let annotations =
        |c: &TestCluster| c.ctl_json(&["get", "pod", "web"])["metadata"]["annotations"].clone();
    assert_eq!(annotations(&c)["note"], "bye");
    let out = c.ctl(&["annotate", "pod/web", "no/t/e=x"]);
    assert!(!out.status.success());
    c.ctl_ok(&["annotate", "pod/web", "note-"]);
    assert!(annotations(&c).get("note").is_none_or(|v| v.is_null()));

    // A viewer may ask kube9d's version, not change labels or cordon.
    let viewer = c
        .ctl_ok(&["token", "create", "--role", "viewer"])
        .trim()
        .to_string();
    let text = c.ctl_ok(&["--token", &viewer, "version"]);
    assert!(text.contains("Server Version: v"), "{text}");
    for args in [&["label", "pod/web", "a=b"][..], &["cordon", "n1"][..]] {
        let mut all = vec!["--token", viewer.as_str()];
        all.extend_from_slice(args);
        let out = c.ctl(&all);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains("admin"), "{}", stderr(&out));
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_apply_dry_run_and_output_and_server_urls() {
    let c = TestCluster::start(Options::process().arg("--insecure")).await;
    c.healthy_nodes(&[("n1", "2")]).await;

    let text = c.ctl_ok(&["version"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("Client Version: v"), "{text}");
    assert!(lines[1].starts_with("Server Version: v"), "{text}");
    let json = c.ctl_json(&["version"]);
    assert!(json["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap()
        .starts_with('v'));
    assert!(json["clientVersion"]["gitVersion"].is_string());
    assert_eq!(
        c.ctl_ok(&["version", "--client"]).lines().count(),
        1,
        "--client asks no server"
    );

    // --dry-run=server: admitted by kube9d, nothing stored.
    let pod = pod_yaml("dry", "100m", "sleep 1000");
    let out = c.ctl_stdin(&["apply", "-f", "-", "--dry-run=server"], Some(&pod));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pod/dry created (server dry run)\n");
    // kube9d's own admission runs: a pod of an existing name with another spec is refused.
    c.apply(&pod_yaml("there", "100m", "sleep 1000"));
    let other = pod_yaml("there", "200m", "sleep 1000");
    let out = c.ctl_stdin(&["apply", "-f", "-", "--dry-run=server"], Some(&other));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = c.ctl_stdin(&["apply", "-f", "-", "--dry-run=client"], Some(&pod));
    assert_eq!(stdout(&out), "pod/dry created (dry run)\n");
    let out = c.ctl(&["get", "pod", "dry"]);
    assert!(!out.status.success(), "a dry run stored the pod");
    let names = c.ctl_ok(&["get", "pods", "-o", "name"]);
    assert_eq!(names, "pod/there\n");

    // -o name and -o json print what was applied.
    let out = c.ctl_stdin(
        &["apply", "-f", "-", "-o", "name"],
        Some(&pod_yaml("named", "100m", "sleep 1000")),
    );
    assert_eq!(stdout(&out), "pod/named\n");
    let out = c.ctl_stdin(
        &["apply", "-f", "-", "-o", "json"],
        Some(&pod_yaml("shown", "100m", "sleep 1000")),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "Pod");
    assert_eq!(json["metadata"]["name"], "shown");

    // api-resources and completion work without a server.
    let table = c.ctl_ok(&["api-resources"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pods", "po", "v1", "true", "Pod"]));
    let script = c.ctl_ok(&["completion", "bash"]);
    assert!(script.contains("kube9ctl") && script.contains("drain"));

    // https:// to a plain-text kube9d, and a URL without a port: refused with a sentence.
    let https = format!("https://127.0.0.1:{}", c.port);
    let out = c.ctl(&["--server", &https, "get", "nodes"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not speak TLS"),
        "{}",
        stderr(&out)
    );
    let out = c.ctl(&["--server", "http://127.0.0.1", "get", "nodes"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("must name the port"),
        "{}",
        stderr(&out)
    );
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_shows_what_running_pods_use() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2"), ("n2", "2")]).await;
    c.apply(&pod_yaml("busy", "500m", "while true; do :; done"));
    c.apply(&pod_yaml("idle", "100m", "sleep 1000"));
    for pod in ["busy", "idle"] {
        c.wait_pod_phase(pod, PodPhase::Running, secs(30)).await;
    }
    // The busy loop takes a good part of a core once two heartbeats measured it.
    let (busy_cpu, text) = c
        .wait_for("top pods to show the busy pod", secs(20), || async {
            let text = c.ctl_ok(&["top", "pods"]);
            let row = text
                .lines()
                .find(|l| l.starts_with("busy "))?
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>();
            let cpu: i64 = row[1].trim_end_matches('m').parse().ok()?;
            (cpu >= 200).then_some((cpu, text))
        })
        .await;
    assert!(text.starts_with("NAME"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("idle ")), "{text}");
    assert!(busy_cpu <= 1500, "{text}");
    let nodes = c.ctl_ok(&["top", "nodes"]);
    let busy_node = c.pod("busy").await.node;
    let row: Vec<&str> = nodes
        .lines()
        .find(|l| l.starts_with(&format!("{busy_node} ")))
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(row[1].ends_with('m') && row[2].ends_with('%'), "{nodes}");
    assert!(
        row[1].trim_end_matches('m').parse::<i64>().unwrap() > 0,
        "{nodes}"
    );
    let all = c.ctl_ok(&["top", "pods", "-A"]);
    assert!(all.starts_with("NAMESPACE"), "{all}");
    c.ctl_ok(&["delete", "pod", "busy"]);
    c.finish().await;
}
