//! Selecting pods with kube9ctl on a real cluster (nodes as processes): set-based label
//! selectors and field selectors on `get`, `delete` and `logs`, `delete --all`, bulk deletes
//! that report every pod (and go on past one that does not exist), and `get` in pages
//! (`--chunk-size`, `ListPods` with `limit` and `continue_token`).

mod support;

use kube9_proto::pb::{self, PodPhase};
use std::collections::HashSet;
use support::*;

/// A pod running `script`, with these labels (and no others).
fn labelled_pod(name: &str, labels: &[(&str, &str)], script: &str) -> String {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: {v}\n"))
        .collect();
    pod_yaml(name, "100m", script).replace("    app: test\n", &labels)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `get pods -o name` with these extra arguments, as a list of names.
fn names(c: &TestCluster, args: &[&str]) -> Vec<String> {
    let mut a = vec!["get", "pods", "-o", "name"];
    a.extend_from_slice(args);
    c.ctl_ok(&a)
        .lines()
        .map(|l| l.trim_start_matches("pod/").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_based_and_field_selectors_pick_pods_for_get_logs_and_delete() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    let hello = |name: &str| format!("echo hello from {name}; sleep 1000");
    c.apply(&labelled_pod(
        "web-1",
        &[("app", "web"), ("env", "prod")],
        &hello("web-1"),
    ));
    c.apply(&labelled_pod(
        "web-2",
        &[("app", "web"), ("env", "staging")],
        &hello("web-2"),
    ));
    c.apply(&labelled_pod(
        "db-1",
        &[("app", "db"), ("env", "prod")],
        &hello("db-1"),
    ));
    c.apply(&labelled_pod(
        "cache-1",
        &[("app", "cache")],
        &hello("cache-1"),
    ));
    c.apply(
        &labelled_pod("job-1", &[("app", "job")], "echo done")
            .replace("spec:\n", "spec:\n  restartPolicy: Never\n"),
    );
    for pod in ["web-1", "web-2", "db-1", "cache-1"] {
        c.wait_pod_phase(pod, PodPhase::Running, secs(30)).await;
    }
    c.wait_pod_phase("job-1", PodPhase::Succeeded, secs(30))
        .await;

    // Set-based label selectors; notin and != also match pods without the label.
    assert_eq!(
        names(&c, &["-l", "env in (prod,staging)"]),
        ["db-1", "web-1", "web-2"]
    );
    assert_eq!(
        names(&c, &["-l", "env notin (prod)"]),
        ["cache-1", "job-1", "web-2"]
    );
    assert_eq!(names(&c, &["-l", "!env"]), ["cache-1", "job-1"]);
    assert_eq!(names(&c, &["-l", "env"]), ["db-1", "web-1", "web-2"]);
    assert_eq!(
        names(&c, &["-l", "app in (web, db),env==prod"]),
        ["db-1", "web-1"]
    );
    assert_eq!(
        names(&c, &["-l", "app!=web,app notin (job)"]),
        ["cache-1", "db-1"]
    );
    let bad = c.ctl(&["get", "pods", "-l", "env in (prod"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("'(' without a matching ')'"),
        "{}",
        stderr(&bad)
    );
    // kube9d refuses a malformed selector itself, with InvalidArgument and the reason.
    let mut client = c.client().await;
    let refused = client
        .list_pods(pb::ListPodsRequest {
            label_selector: "env notin prod".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("must be in parentheses"),
        "{refused:?}"
    );

    // Field selectors, done by kube9d.
    assert_eq!(
        names(&c, &["--field-selector", "status.phase=Succeeded"]),
        ["job-1"]
    );
    assert_eq!(
        names(
            &c,
            &[
                "--field-selector",
                "status.phase==Running,metadata.name!=db-1"
            ]
        ),
        ["cache-1", "web-1", "web-2"]
    );
    assert_eq!(
        names(
            &c,
            &["--field-selector", "spec.nodeName=n1", "-l", "app=web"]
        ),
        ["web-1", "web-2"]
    );
    assert!(names(&c, &["--field-selector", "spec.nodeName!=n1"]).is_empty());
    assert_eq!(
        names(
            &c,
            &[
                "--field-selector",
                "metadata.namespace=default,metadata.name=db-1"
            ]
        ),
        ["db-1"]
    );
    let bad = c.ctl(&["get", "pods", "--field-selector", "spec.foo=bar"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("field label not supported: spec.foo"),
        "{}",
        stderr(&bad)
    );
    let bad = c.ctl(&[
        "get",
        "pods",
        "web-1",
        "--field-selector",
        "status.phase=Running",
    ]);
    assert!(!bad.status.success());

    // logs -l: each pod's logs in name order, prefixed on request.
    assert_eq!(
        c.ctl_ok(&["logs", "-l", "app=web"]),
        "hello from web-1\nhello from web-2\n"
    );
    assert_eq!(
        c.ctl_ok(&["logs", "-l", "app in (web,cache)", "--prefix"]),
        "[pod/cache-1/main] hello from cache-1\n\
         [pod/web-1/main] hello from web-1\n\
         [pod/web-2/main] hello from web-2\n"
    );
    assert_eq!(
        c.ctl_ok(&["logs", "web-2", "--prefix"]),
        "[pod/web-2/main] hello from web-2\n"
    );
    let none = c.ctl(&["logs", "-l", "app=nothing"]);
    assert!(none.status.success());
    assert!(stdout(&none).is_empty());

    // delete -l with a set, then by field, then a selector matching nothing, then --all.
    let out = c.ctl_ok(&["delete", "pods", "-l", "app in (web,cache)"]);
    assert_eq!(
        out,
        "pod \"cache-1\" deleted\npod \"web-1\" deleted\npod \"web-2\" deleted\n"
    );
    assert_eq!(names(&c, &[]), ["db-1", "job-1"]);
    let out = c.ctl_ok(&[
        "delete",
        "pods",
        "--field-selector",
        "status.phase=Succeeded",
    ]);
    assert_eq!(out, "pod \"job-1\" deleted\n");
    let out = c.ctl(&["delete", "pods", "-l", "app=nothing"]);
    assert!(out.status.success());
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("No resources found"),
        "{}",
        stderr(&out)
    );
    let bad = c.ctl(&["delete", "pods", "--field-selector", "spec.foo=bar"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("field label not supported: spec.foo"));
    assert_eq!(names(&c, &[]), ["db-1"]);
    let out = c.ctl_ok(&["delete", "pods", "--all"]);
    assert_eq!(out, "pod \"db-1\" deleted\n");
    assert!(names(&c, &[]).is_empty());
    c.assert_cpu_invariant().await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_delete_reports_every_pod_and_goes_on_past_one_not_found() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "4")]).await;
    let pods: Vec<String> = (0..12).map(|i| format!("p-{i:02}")).collect();
    let manifest: Vec<String> = pods
        .iter()
        .map(|p| pod_yaml(p, "10m", "sleep 1000"))
        .collect();
    c.apply(&manifest.join("---\n"));
    for p in &pods {
        c.wait_pod_phase(p, PodPhase::Running, secs(30)).await;
    }
    // Other namespaces are left alone.
    c.ctl_ok(&["create", "namespace", "other"]);
    c.apply(
        &pod_yaml("p-00", "10m", "sleep 1000")
            .replace("metadata:\n", "metadata:\n  namespace: other\n"),
    );

    // Names, with one missing in the middle: every other pod deleted and reported, the
    // missing one reported, exit 1.
    let mut args = vec!["delete", "pod"];
    args.extend(pods[..6].iter().map(String::as_str));
    args.push("missing");
    args.extend(pods[6..10].iter().map(String::as_str));
    let out = c.ctl(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let expected: String = pods[..10]
        .iter()
        .map(|p| format!("pod \"{p}\" deleted\n"))
        .collect();
    assert_eq!(stdout(&out), expected);
    assert_eq!(
        stderr(&out),
        "Error from server (NotFound): pod \"missing\" not found\n"
    );
    // Waited for: gone when the command returns.
    assert_eq!(names(&c, &[]), ["p-10", "p-11"]);
    assert_eq!(names(&c, &["-n", "other"]), ["p-00"]);
    // --ignore-not-found: only the pods that were there.
    let out = c.ctl_ok(&["delete", "pod", "p-10", "gone", "--ignore-not-found"]);
    assert_eq!(out, "pod \"p-10\" deleted\n");

    // get -o name | xargs delete: KIND/NAME arguments go the same way.
    c.apply(&pod_yaml("x-1", "10m", "sleep 1000"));
    let listed = c.ctl_ok(&["get", "pods", "-o", "name"]);
    let args: Vec<&str> = std::iter::once("delete")
        .chain(listed.split_whitespace())
        .collect();
    assert_eq!(args, ["delete", "pod/p-11", "pod/x-1"]);
    assert_eq!(
        c.ctl_ok(&args),
        "pod \"p-11\" deleted\npod \"x-1\" deleted\n"
    );
    assert!(names(&c, &[]).is_empty());

    // The request itself: one result per pod, in the order named, duplicates once.
    c.apply(&pod_yaml("y-1", "10m", "sleep 1000"));
    c.apply(&pod_yaml("y-2", "10m", "sleep 1000"));
    let mut client = c.client().await;
    let answer = client
        .delete_pods(pb::DeletePodsRequest {
            names: vec!["y-2".into(), "nope".into(), "y-1".into(), "y-2".into()],
            wait: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let results: Vec<(String, i32)> = answer
        .results
        .iter()
        .map(|r| (r.name.clone(), r.code))
        .collect();
    assert_eq!(
        results,
        [
            ("y-2".to_string(), 0),
            ("nope".to_string(), tonic::Code::NotFound as i32),
            ("y-1".to_string(), 0)
        ]
    );
    assert!(c.pods().await.iter().all(|p| p.namespace == "other"));
    // Names and a selector together, or nothing at all, are refused.
    for request in [
        pb::DeletePodsRequest {
            names: vec!["a".into()],
            all: true,
            ..Default::default()
        },
        pb::DeletePodsRequest::default(),
    ] {
        let refused = client.delete_pods(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    }
    c.assert_cpu_invariant().await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_come_in_pages_each_pod_once_across_concurrent_changes() {
    // No nodes: the pods stay Pending, which is all a list needs.
    let c = TestCluster::start(Options::process()).await;
    let pods: Vec<String> = (0..20).map(|i| format!("pod-{i:02}")).collect();
    let manifest: Vec<String> = pods
        .iter()
        .map(|p| pod_yaml(p, "10m", "sleep 1000"))
        .collect();
    c.apply(&manifest.join("---\n"));
    c.ctl_ok(&["create", "namespace", "zz"]);
    c.apply(
        &pod_yaml("pod-05", "10m", "sleep 1")
            .replace("metadata:\n", "metadata:\n  namespace: zz\n"),
    );

    // kube9ctl: 20 pods in pages of 7 (3 requests), each once, in order; the same in one.
    assert_eq!(names(&c, &["--chunk-size", "7"]), pods);
    assert_eq!(names(&c, &["--chunk-size", "0"]), pods);
    assert_eq!(names(&c, &["--chunk-size", "1", "-n", "zz"]), ["pod-05"]);
    let all = c.ctl_ok(&["get", "pods", "-A", "--chunk-size", "7", "--no-headers"]);
    assert_eq!(all.lines().count(), 21);
    assert_eq!(
        names(
            &c,
            &[
                "--chunk-size",
                "7",
                "-l",
                "app=test",
                "--field-selector",
                "metadata.name!=pod-03"
            ]
        )
        .len(),
        19
    );

    // The API: a continue token is the last key of the page, valid whatever changes.
    let mut client = c.client().await;
    let page = |token: String| pb::ListPodsRequest {
        namespace: "default".into(),
        limit: 7,
        continue_token: token,
        ..Default::default()
    };
    let first = client
        .list_pods(page(String::new()))
        .await
        .unwrap()
        .into_inner();
    let first_names: Vec<&str> = first.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(first_names, pods[..7]);
    assert_eq!(first.continue_token, "default/pod-06");
    // Between pages: one pod before the token and one after it are created, one after it is
    // deleted.
    c.apply(&pod_yaml("pod-00a", "10m", "sleep 1"));
    c.apply(&pod_yaml("pod-10a", "10m", "sleep 1"));
    c.ctl_ok(&["delete", "pod", "pod-12"]);
    let mut seen: Vec<String> = first.pods.iter().map(|p| p.name.clone()).collect();
    let mut token = first.continue_token;
    let mut requests = 1;
    while !token.is_empty() {
        let next = client.list_pods(page(token)).await.unwrap().into_inner();
        assert!(next.pods.len() <= 7);
        seen.extend(next.pods.iter().map(|p| p.name.clone()));
        token = next.continue_token;
        requests += 1;
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "listed twice: {seen:?}");
    for p in pods.iter().filter(|p| *p != "pod-12") {
        assert!(seen.contains(p), "{p} missing from {seen:?}");
    }
    assert!(seen.contains(&"pod-10a".to_string()));
    assert!(!seen.contains(&"pod-00a".to_string()));
    assert!(!seen.contains(&"pod-12".to_string()));
    assert_eq!(requests, 3);
    // A token that is no key is refused.
    let refused = client.list_pods(page("garbage".into())).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    c.finish().await;
}

/// Pages end at a size as well as a count: with big pods, every page of `limit` 500 still
/// fits a default gRPC client's 4 MiB message, and together they hold every pod once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_big_pods_fit_a_default_grpc_message() {
    let c = TestCluster::start(Options::process()).await;
    // 24 pods of 200 KiB each: 4.7 MiB in all, more than one message holds.
    let ballast = "x".repeat(200 * 1024);
    let pods: Vec<String> = (0..24).map(|i| format!("big-{i:02}")).collect();
    for p in &pods {
        c.apply(&pod_yaml(p, "10m", "sleep 1000").replacen(
            "  labels:\n",
            &format!("  annotations:\n    ballast: {ballast}\n  labels:\n"),
            1,
        ));
    }
    let mut client = c.client().await;
    let mut seen = vec![];
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let request = pb::ListPodsRequest {
            limit: 500,
            continue_token: token,
            ..Default::default()
        };
        let page = client.list_pods(request).await.unwrap().into_inner();
        assert!(!page.pods.is_empty());
        // 17 of these pods are 3.4 MiB: a page holds fewer.
        assert!(page.pods.len() < 17, "{} pods in one page", page.pods.len());
        seen.extend(page.pods.iter().map(|p| p.name.clone()));
        pages += 1;
        token = page.continue_token;
        if token.is_empty() {
            break;
        }
    }
    assert!(pages >= 2, "{pages} page(s)");
    seen.sort();
    assert_eq!(seen, pods);
    // kube9ctl pages the same way.
    let listed = c.ctl_ok(&["get", "pods", "-o", "name"]);
    assert_eq!(listed.lines().count(), pods.len());
    c.finish().await;
}
