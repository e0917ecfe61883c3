//! The web dashboard in a real browser (headless Chromium through chromedriver), against a
//! real kube9d with real process nodes: sign-in, the live connection, the overview's counts,
//! a pod created from the YAML editor turning Running without a reload, a node failure
//! simulated from the page, kube9ctl's validation messages, live logs, the viewer's read-only
//! page, CSRF refusals, and how fast a change shows with 1,000 pods in the cluster.
//!
//! Screenshots of every page go to `target/<triple>/debug/dashboard-screenshots/` (not
//! committed). Skipped, with the reason, only where Chromium or chromedriver is not installed
//! (`.ci/run` installs both).

mod support;

use std::path::PathBuf;

use kube9_proto::pb;
use serde_json::json;
use support::webdriver::{find_browser, Browser};
use support::*;

fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A pod manifest the process runtime runs: prints a marker, then sleeps.
fn logging_pod(name: &str) -> String {
    pod_yaml(
        name,
        "100m",
        &format!("echo hello-from-{name}; while true; do sleep 1; done"),
    )
}

#[test]
fn dashboard_in_a_real_browser() {
    if let Err(why) = find_browser() {
        eprintln!("SKIPPED dashboard_in_a_real_browser: {why}");
        return;
    }
    run_big(browser_scenario());
}

/// Runs a long scenario on a thread with room for it: unoptimized, its one large future
/// needs more than a test thread's stack.
fn run_big<F: std::future::Future<Output = ()> + Send + 'static>(scenario: F) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .enable_all()
                .build()
                .unwrap()
                .block_on(scenario)
        })
        .unwrap()
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

async fn browser_scenario() {
    // A failed node waits 30 s before kube9d restarts it: long enough to look at it.
    let c = TestCluster::start(
        Options::process()
            .arg("--dashboard-listen")
            .arg("127.0.0.1:0")
            .arg("--recovery-backoff-ms")
            .arg("30000"),
    )
    .await;
    c.healthy_nodes(&[("dash-a", "4"), ("dash-b", "4")]).await;
    let url = c.dashboard_url();
    let shots = screenshot_dir();
    let browser = Browser::start(&c.data_dir).await;

    // Sign-in: a wrong token is refused with kube9d's reason; the admin token opens the page.
    browser.goto(&url).await;
    browser.find("#login:not([hidden]) #token").await;
    browser.screenshot(&shots.join("01-login.png")).await;
    let unknown = format!("abcdef.{}", "0".repeat(64));
    browser.type_into("#token", &unknown).await;
    browser.click("#login-btn").await;
    let refused = browser
        .wait_for(
            "the refusal",
            secs(10),
            "return document.querySelector('#login-err').textContent",
        )
        .await;
    assert!(
        refused
            .as_str()
            .unwrap()
            .contains("the token was not accepted"),
        "kube9d's refusal: {refused}"
    );
    browser.type_into("#token", &c.admin_token()).await;
    browser.click("#login-btn").await;

    // The page holds a live connection to the watch.
    browser
        .wait_for(
            "the live connection",
            secs(20),
            "return document.querySelector('#conn').dataset.state === 'live'",
        )
        .await;
    // A marker that a reload would wipe: every check below happens on this one page load.
    browser
        .eval("window.__sameLoad = 42; return true;", vec![])
        .await;

    // Overview: the node count.
    browser
        .wait_for(
            "two nodes on the overview",
            secs(10),
            "return document.querySelector('#ov-nodes-total')?.textContent === '2'",
        )
        .await;
    let healthy = browser.text("#ov-nodes [data-status=Healthy] b").await;
    assert_eq!(healthy, "2", "both nodes healthy on the overview");
    // The chart has its first samples (kube9d samples every 2 s).
    browser
        .wait_for(
            "the chart",
            secs(10),
            "return document.querySelector('#ov-chart-health polyline.l-healthy')?.getAttribute('points')?.length > 0",
        )
        .await;
    browser.screenshot(&shots.join("02-overview.png")).await;

    // Pods: create one from the YAML editor; it turns Running without a reload.
    browser.click("a[href='#/pods']").await;
    browser.click("#create summary").await;
    browser.type_into("#yaml", &logging_pod("web-ui")).await;
    browser.click("#apply").await;
    let result = browser
        .wait_for(
            "the apply result",
            secs(10),
            "return document.querySelector('#apply-msg .result')?.textContent",
        )
        .await;
    assert_eq!(result, json!("pod/web-ui created"));
    let status = browser
        .wait_for(
            "web-ui Running on the pods page",
            secs(60),
            "const s = document.querySelector('tr[data-pod=\"default/web-ui\"] .status')?.textContent; return s === 'Running' && s",
        )
        .await;
    assert_eq!(status, json!("Running"));
    assert_eq!(
        c.pod("web-ui").await.phase,
        pb::PodPhase::Running as i32,
        "the page shows what kube9d holds"
    );

    // A bad manifest: the same message kube9ctl prints, and nothing is stored.
    let bad = pod_yaml("bad-cpu", "-1", "sleep 1");
    let file = c.data_dir.join("bad.yaml");
    std::fs::write(&file, &bad).unwrap();
    let ctl = c.ctl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!ctl.status.success());
    let ctl_err = String::from_utf8_lossy(&ctl.stderr);
    let ctl_msg = ctl_err
        .lines()
        .find(|l| l.starts_with("error: "))
        .and_then(|l| l.split_once(": document "))
        .map(|(_, rest)| format!("document {rest}"))
        .unwrap_or_else(|| panic!("kube9ctl's message: {ctl_err}"));
    browser.type_into("#yaml", &bad).await;
    browser.click("#apply").await;
    let page_err = browser
        .wait_for(
            "the validation message",
            secs(10),
            "return document.querySelector('#apply-msg .error')?.textContent",
        )
        .await;
    let page_err = page_err.as_str().unwrap();
    assert_eq!(page_err, format!("error: editor: {ctl_msg}"));
    assert!(page_err.contains("must not be negative"), "{page_err}");
    // Warnings too, as kube9ctl's `Warning:` lines.
    let warned = logging_pod("warned").replace(
        "    resources:",
        "    livenessProbe:\n      exec:\n        command: [\"true\"]\n      periodSeconds: 5\n    stdinOnce: true\n    resources:",
    );
    browser.type_into("#yaml", &warned).await;
    browser.click("#dry-run").await;
    let warning = browser
        .wait_for(
            "the warning",
            secs(10),
            "return document.querySelector('#apply-msg .warning')?.textContent",
        )
        .await;
    let warning = warning.as_str().unwrap();
    assert!(
        warning.starts_with("Warning: editor: document 1 (pod \"warned\"): unknown field"),
        "{warning}"
    );
    assert!(warning.contains("stdinOnce"), "{warning}");
    assert_eq!(
        browser.text("#apply-msg .result").await,
        "pod/warned created (server dry run)"
    );
    let names: Vec<String> = c.pods().await.into_iter().map(|p| p.name).collect();
    assert_eq!(names, vec!["web-ui".to_string()], "nothing else was stored");
    browser.screenshot(&shots.join("03-pods.png")).await;

    // The pod's page follows its logs live.
    browser.click("a[href='#/pods/default/web-ui']").await;
    browser
        .wait_for(
            "the pod's logs",
            secs(30),
            "return document.querySelector('#logs')?.textContent.includes('hello-from-web-ui')",
        )
        .await;
    assert_eq!(
        browser
            .text("#containers tr[data-container=main] td:nth-child(3)")
            .await,
        "Running"
    );
    browser.screenshot(&shots.join("04-pod.png")).await;

    // Nodes: create one from the form, cordon and uncordon it, delete it (confirmed).
    browser.click("a[href='#/nodes']").await;
    browser.type_into("#cn-name", "dash-c").await;
    browser.type_into("#cn-cpu", "2").await;
    browser.type_into("#cn-mem", "1Gi").await;
    browser.click("#cn-create").await;
    browser
        .wait_for(
            "dash-c Healthy on the nodes page",
            secs(60),
            "return document.querySelector('tr[data-node=dash-c] .status')?.textContent === 'Healthy'",
        )
        .await;
    let made = c.node("dash-c").await;
    assert_eq!(
        (made.cpu_capacity_millis, made.memory_capacity_bytes),
        (2000, 1 << 30)
    );
    browser
        .click("tr[data-node=dash-c] button[data-op=cordon]")
        .await;
    browser
        .wait_for(
            "dash-c cordoned",
            secs(10),
            "return document.querySelector('tr[data-node=dash-c] .status')?.textContent === 'Healthy,SchedulingDisabled'",
        )
        .await;
    assert!(c.node("dash-c").await.unschedulable);
    browser
        .click("tr[data-node=dash-c] button[data-op=uncordon]")
        .await;
    browser
        .wait_for(
            "dash-c uncordoned",
            secs(10),
            "return document.querySelector('tr[data-node=dash-c] .status')?.textContent === 'Healthy'",
        )
        .await;
    browser
        .click("tr[data-node=dash-c] button[data-op=delete-node]")
        .await;
    browser.accept_dialog().await;
    browser
        .wait_for(
            "dash-c gone from the page",
            secs(60),
            "return !document.querySelector('tr[data-node=dash-c]')",
        )
        .await;
    assert!(c.nodes().await.iter().all(|n| n.name != "dash-c"));

    // Simulate a heartbeat failure from the page; status and events change.
    browser
        .find("tr[data-node=dash-a] select[data-fail=dash-a]")
        .await;
    browser
        .click("tr[data-node=dash-a] button[data-op=fail]")
        .await;
    browser
        .wait_for(
            "dash-a Failed on the nodes page",
            secs(30),
            "return document.querySelector('tr[data-node=dash-a] .status')?.textContent.includes('Failed')",
        )
        .await;
    browser.screenshot(&shots.join("05-nodes.png")).await;
    browser.click("a[href='#/nodes/dash-a']").await;
    let event = browser
        .wait_for(
            "the failure's event on the node page",
            secs(10),
            "return [...document.querySelectorAll('#node-events tr')].map(r => r.textContent).find(t => t.includes('Failed'))",
        )
        .await;
    assert!(event.as_str().unwrap().contains("Warning"), "{event}");
    assert_eq!(
        c.node("dash-a").await.status,
        pb::NodeStatus::Failed as i32,
        "kube9d holds what the page shows"
    );
    browser.screenshot(&shots.join("06-node.png")).await;
    // The troubleshooting page lists it, linked to its events.
    browser.click("a[href='#/troubleshooting']").await;
    browser
        .wait_for(
            "dash-a among the troubled nodes",
            secs(10),
            "return !!document.querySelector('#trouble-nodes tr[data-node=dash-a] a[href=\"#/nodes/dash-a\"]')",
        )
        .await;
    browser
        .screenshot(&shots.join("07-troubleshooting.png"))
        .await;
    // Recover it from its page.
    browser.click("a[href='#/nodes/dash-a']").await;
    browser
        .click("button[data-op=recover][data-node=dash-a]")
        .await;
    c.wait_node_status("dash-a", pb::NodeStatus::Healthy, secs(60))
        .await;
    browser
        .wait_for(
            "dash-a Healthy again",
            secs(10),
            "return document.querySelector('#node-detail .status')?.textContent.includes('Healthy')",
        )
        .await;

    // Cross-site requests: without the session's CSRF token, or from another origin, refused.
    let refused = browser
        .eval(
            "const x = new XMLHttpRequest(); x.open('POST', '/api/call/DeletePod', false);
             x.setRequestHeader('content-type', 'application/json');
             x.send(JSON.stringify({name: 'web-ui'})); return [x.status, x.responseText];",
            vec![],
        )
        .await;
    assert_eq!(refused[0], json!(403), "{refused}");
    assert!(refused[1].as_str().unwrap().contains("CSRF"), "{refused}");
    c.wait_pod_phase("web-ui", pb::PodPhase::Running, secs(5))
        .await;

    // A change shows within a second, also with 1,000 pods in the cluster.
    let mut client = c.client().await;
    let pending: Vec<pb::Pod> = (0..1000)
        .map(|i| pending_pod(&format!("load-{i:04}")))
        .collect();
    client
        .apply(pb::ApplyRequest {
            pods: pending,
            ..Default::default()
        })
        .await
        .unwrap();
    browser.click("a[href='#/pods']").await;
    browser
        .wait_for(
            "1,001 pods on the page",
            secs(60),
            "return document.querySelector('#pods-count')?.textContent === '1001 of 1001'",
        )
        .await;
    let mut latencies = Vec::new();
    for i in 0..5 {
        let name = format!("a-probe-{i}");
        // The page notes when the row first appears (epoch ms, same clock as the test).
        browser
            .eval(
                "const key = arguments[0]; window.__seen = 0;
                 const obs = new MutationObserver(() => {
                   if (!window.__seen && document.querySelector(`tr[data-pod=\"${key}\"]`)) {
                     window.__seen = performance.timeOrigin + performance.now(); obs.disconnect();
                   }
                 });
                 obs.observe(document.querySelector('#view'), {childList: true, subtree: true});
                 return true;",
                vec![json!(format!("default/{name}"))],
            )
            .await;
        let sent = epoch_ms();
        client
            .apply(pb::ApplyRequest {
                pods: vec![pending_pod(&name)],
                ..Default::default()
            })
            .await
            .unwrap();
        let seen = browser
            .wait_for("the probe's row", secs(10), "return window.__seen")
            .await;
        latencies.push(seen.as_f64().unwrap() - sent);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "dashboard: a new pod's row showed {:.0} ms (median), {:.0} ms (max) after Apply, with 1,000 pods in the cluster",
        latencies[2], latencies[4]
    );
    assert_eq!(
        browser.eval("return window.__sameLoad", vec![]).await,
        json!(42),
        "no reload happened"
    );
    // The label filter is kube9d's selector: the same matches and the same errors as -l.
    browser.type_into("#f-label", "load!=yes").await;
    browser
        .wait_for(
            "only web-ui left by the label filter",
            secs(10),
            "const rows = [...document.querySelectorAll('#pods tbody tr')].map(r => r.dataset.pod);
             return rows.length === 1 && rows[0] === 'default/web-ui'",
        )
        .await;
    browser.type_into("#f-label", "app in (").await;
    let page_err = browser
        .wait_for(
            "the selector's error",
            secs(10),
            "return document.querySelector('#f-err').textContent",
        )
        .await;
    let ctl = c.ctl(&["get", "pods", "-l", "app in ("]);
    assert!(!ctl.status.success());
    let ctl_err = String::from_utf8_lossy(&ctl.stderr);
    assert!(
        ctl_err.contains(page_err.as_str().unwrap()),
        "the page says {page_err}, kube9ctl {ctl_err}"
    );
    browser.type_into("#f-label", "").await;
    let deleted = client
        .delete_pods(pb::DeletePodsRequest {
            namespace: "default".into(),
            label_selector: "load=yes".into(),
            ..Default::default()
        })
        .await;
    assert!(deleted.is_ok(), "{deleted:?}");

    // A viewer, signed in by `kube9ctl dashboard`'s link: the same pages, no write actions;
    // the server refuses them anyway.
    browser.click("#logout").await;
    browser.find("#login:not([hidden]) #token").await;
    let link = c.ctl_ok(&["dashboard", "--role", "viewer", "--url", &url]);
    let link = link.trim();
    assert!(link.starts_with(&format!("{url}#token=")), "{link}");
    browser.goto(link).await;
    browser
        .wait_for(
            "the viewer's live page",
            secs(20),
            "return document.querySelector('#conn').dataset.state === 'live'",
        )
        .await;
    assert_eq!(
        browser.eval("return location.hash", vec![]).await,
        json!("#/overview"),
        "the token is gone from the address bar"
    );
    assert!(browser.text("#who").await.starts_with("viewer"));
    browser.click("a[href='#/nodes']").await;
    browser.find("tr[data-node=dash-b]").await;
    let buttons = browser
        .eval(
            "const shown = (e) => e && e.offsetParent !== null;
             return [...document.querySelectorAll('button, select, input, textarea')]
               .filter((e) => shown(e) && (e.dataset.op || e.closest('#create-node')))
               .map((e) => e.outerHTML);",
            vec![],
        )
        .await;
    assert_eq!(buttons, json!([]), "a viewer sees no write actions");
    // The pods page neither: no editor.
    browser.click("a[href='#/pods']").await;
    browser.find("#pods-count").await;
    let editor = browser
        .eval(
            "return document.querySelector('#create').offsetParent !== null",
            vec![],
        )
        .await;
    assert_eq!(editor, json!(false), "a viewer has no YAML editor");
    browser.click("a[href='#/nodes']").await;
    browser.find("tr[data-node=dash-b]").await;
    let denied = browser
        .eval(
            "const x = new XMLHttpRequest();
             x.open('POST', '/api/call/DeletePod', false);
             x.setRequestHeader('content-type', 'application/json');
             x.setRequestHeader('x-kube9-csrf', S.session.csrf);
             x.send(JSON.stringify({name: 'web-ui'})); return [x.status, x.responseText];",
            vec![],
        )
        .await;
    assert_eq!(denied[0], json!(403), "{denied}");
    assert!(
        denied[1]
            .as_str()
            .unwrap()
            .contains("it needs the admin role"),
        "{denied}"
    );
    browser.screenshot(&shots.join("08-viewer-nodes.png")).await;
    // Dark, as the toggle sets it (and remembers it).
    browser.click("a[href='#/overview']").await;
    browser.click("#theme").await;
    let theme = browser
        .eval("return document.documentElement.dataset.theme", vec![])
        .await;
    browser
        .screenshot(&shots.join(format!("09-overview-{}.png", theme.as_str().unwrap())))
        .await;

    drop(browser);
    eprintln!("screenshots in {}", shots.display());
    c.finish().await;
}

fn pending_pod(name: &str) -> pb::Pod {
    // More CPU than any node has: it stays Pending, in the cluster and on the page.
    pb::Pod {
        name: name.into(),
        namespace: "default".into(),
        labels: [("load".to_string(), "yes".to_string())].into(),
        containers: vec![pb::Container {
            name: "main".into(),
            image: "busybox".into(),
            command: vec!["sleep".into(), "1000".into()],
            cpu_request_millis: 64_000,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// One HTTP/1.1 request to the dashboard: (status, headers, body).
async fn http(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    support::webdriver::exchange(host, method, path, headers, body)
        .await
        .unwrap()
}

/// Signs in with `token`: the session cookie and CSRF token.
async fn sign_in(url: &str, token: &str) -> (String, String) {
    let body = json!({ "token": token }).to_string();
    let (status, head, answer) = http(
        url,
        "POST",
        "/api/login",
        &[("content-type", "application/json")],
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    assert!(head.contains("HttpOnly; SameSite=Strict"), "{head}");
    let csrf = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    (cookie, csrf)
}

/// Without a browser: who may sign in, what a session may call, and the refusals, at the HTTP
/// level; the page's writes go through the same token checks and messages as gRPC.
#[test]
fn dashboard_sessions_csrf_and_roles() {
    run_big(sessions_scenario());
}

async fn sessions_scenario() {
    let c = TestCluster::start(
        Options::process()
            .arg("--dashboard-listen")
            .arg("127.0.0.1:0"),
    )
    .await;
    let url = c.dashboard_url();
    let json_type = ("content-type", "application/json");

    // The page itself is served, with a policy that forbids framing and foreign scripts.
    let (status, head, page) = http(&url, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/app.js\""), "{page}");
    assert!(head.contains("frame-ancestors 'none'"), "{head}");

    // Nothing without a session.
    let (status, _, body) = http(&url, "POST", "/api/call/ListNodes", &[json_type], "{}").await;
    assert_eq!(status, 401, "{body}");

    // A node's join token does not sign in; neither does an unknown one.
    let join = std::fs::read_to_string(c.join_token_file()).unwrap();
    let body = json!({ "token": join.trim() }).to_string();
    let (status, _, answer) = http(&url, "POST", "/api/login", &[json_type], &body).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("is a node token"), "{answer}");
    let body = json!({ "token": format!("zzzzzz.{}", "0".repeat(64)) }).to_string();
    let (status, _, answer) = http(&url, "POST", "/api/login", &[json_type], &body).await;
    assert_eq!(status, 401, "{answer}");

    // A sign-in from another site's page is refused.
    let body = json!({ "token": c.admin_token() }).to_string();
    let (status, _, answer) = http(
        &url,
        "POST",
        "/api/login",
        &[json_type, ("origin", "http://evil.example")],
        &body,
    )
    .await;
    assert_eq!(status, 403, "{answer}");

    // An admin session: calls need the CSRF token as well as the cookie.
    let (cookie, csrf) = sign_in(&url, &c.admin_token()).await;
    let with = [
        json_type,
        ("cookie", cookie.as_str()),
        ("x-kube9-csrf", csrf.as_str()),
    ];
    let (status, _, answer) = http(
        &url,
        "POST",
        "/api/call/ListNodes",
        &[json_type, ("cookie", cookie.as_str())],
        "{}",
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("CSRF"), "{answer}");
    let node = json!({ "name": "http-a", "cpu_millis": 2000 }).to_string();
    let (status, _, answer) = http(&url, "POST", "/api/call/CreateNode", &with, &node).await;
    assert_eq!(status, 200, "{answer}");
    c.wait_node_status("http-a", pb::NodeStatus::Healthy, secs(60))
        .await;
    // Errors are kube9d's: code and message, and nothing is stored.
    let (status, _, answer) = http(&url, "POST", "/api/call/CreateNode", &with, &node).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("AlreadyExists"), "{answer}");
    let bad =
        json!({ "yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\n" }).to_string();
    let (status, _, answer) = http(&url, "POST", "/api/apply", &with, &bad).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("editor: document 1"), "{answer}");
    assert!(c.pods().await.is_empty());
    // What the dashboard does not offer is not reachable through it.
    let (status, _, answer) = http(&url, "POST", "/api/call/ListTokens", &with, "{}").await;
    assert_eq!(status, 404, "{answer}");

    // The watch stream answers with the session's CSRF token only.
    let (status, _, _) = http(
        &url,
        "GET",
        "/api/watch?csrf=wrong",
        &[("cookie", cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 403);

    // A viewer reads, and is refused every write with gRPC's message.
    let viewer = c.ctl_ok(&["token", "create", "--role", "viewer"]);
    let (vcookie, vcsrf) = sign_in(&url, viewer.trim()).await;
    let vwith = [
        json_type,
        ("cookie", vcookie.as_str()),
        ("x-kube9-csrf", vcsrf.as_str()),
    ];
    let (status, _, answer) = http(&url, "GET", "/api/session", &vwith, "").await;
    assert_eq!(status, 200);
    assert!(answer.contains("\"can_write\":false"), "{answer}");
    let (status, _, answer) = http(&url, "POST", "/api/call/ListNodes", &vwith, "{}").await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("http-a"), "{answer}");
    let (status, _, answer) = http(
        &url,
        "POST",
        "/api/call/DeleteNode",
        &vwith,
        &json!({ "name": "http-a" }).to_string(),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer.contains("may not call DeleteNode: it needs the admin role"),
        "{answer}"
    );
    assert_eq!(
        c.node("http-a").await.status,
        pb::NodeStatus::Healthy as i32
    );

    // Signing out ends the session; deleting its token ends the other one's rights.
    let (status, _, _) = http(&url, "POST", "/api/logout", &vwith, "").await;
    assert_eq!(status, 204);
    let (status, _, _) = http(&url, "POST", "/api/call/ListNodes", &vwith, "{}").await;
    assert_eq!(status, 401);
    c.finish().await;
}
