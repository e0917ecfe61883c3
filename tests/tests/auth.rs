//! Authentication, roles and TLS end to end: every refusal the security model promises, against
//! the real kube9d, real agents and the real kube9ctl.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use kube9_proto::client::Token;
use kube9_proto::pb;
use support::*;
use tonic::Code;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A token of `role` made through the admin API.
async fn token(c: &TestCluster, role: &str) -> String {
    c.client()
        .await
        .create_token(pb::CreateTokenRequest {
            role: role.into(),
            ttl_seconds: 0,
            description: format!("test {role}"),
        })
        .await
        .expect("create token")
        .into_inner()
        .token
}

fn secret_manifest() -> &'static str {
    "apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: hunter2-very-secret}
"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_a_valid_token_are_refused_and_change_nothing() {
    let c = TestCluster::start(Options::process()).await;
    // The files kube9d made at first start are private.
    assert_eq!(mode(&c.config_path()), 0o600);
    assert_eq!(mode(&c.join_token_file()), 0o600);
    assert_eq!(mode(&c.data_dir.join("tls").join("ca.key")), 0o600);

    let apply = pb::ApplyRequest {
        namespaces: vec![pb::Namespace {
            name: "sneaky".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let no_token = c.client_with_token(None).await;
    let e = no_token.clone().apply(apply.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("no credentials"), "{}", e.message());
    let e = no_token
        .clone()
        .list_pods(pb::ListPodsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    let wrong = Token::generate().to_string();
    let e = c
        .client_with_token(Some(&wrong))
        .await
        .apply(apply.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("not accepted"), "{}", e.message());
    // A right id with a wrong secret reads the same to the caller.
    let viewer = token(&c, "viewer").await;
    let guessed = format!("{}.{}", &viewer[..6], Token::generate().secret);
    let e = c
        .client_with_token(Some(&guessed))
        .await
        .list_pods(pb::ListPodsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // Revoked: works before, refused after.
    let mut v = c.client_with_token(Some(&viewer)).await;
    v.list_pods(pb::ListPodsRequest::default()).await.unwrap();
    c.client()
        .await
        .delete_token(pb::DeleteTokenRequest {
            id: viewer[..6].to_string(),
        })
        .await
        .unwrap();
    let e = v
        .list_pods(pb::ListPodsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // Nothing the refused calls carried was stored; the refusals were logged and counted.
    let spaces = c
        .client()
        .await
        .list_namespaces(pb::ListNamespacesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!spaces.namespaces.iter().any(|n| n.name == "sneaky"));
    let log = std::fs::read_to_string(c.data_dir.join("kube9d.log")).unwrap();
    assert!(
        log.contains("refused a call without a valid token"),
        "{}",
        c.log_tail()
    );
    assert!(log.contains("refused=5"), "{}", c.log_tail());
    assert!(
        !log.contains(&viewer[7..]),
        "a token's secret reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_but_cannot_write_exec_or_see_secret_data() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(&pod_yaml("web", "100m", "sleep 1000"));
    c.apply(secret_manifest());
    c.wait_pod_phase("web", pb::PodPhase::Running, secs(30))
        .await;
    let viewer = token(&c, "viewer").await;
    let mut v = c.client_with_token(Some(&viewer)).await;

    // Reads work.
    assert_eq!(
        v.list_pods(pb::ListPodsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .pods
            .len(),
        1
    );
    v.list_events(pb::ListEventsRequest::default())
        .await
        .unwrap();
    v.get_logs(pb::GetLogsRequest {
        pod: "web".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let _watch = v
        .watch(pb::WatchRequest::default())
        .await
        .expect("a viewer may watch");

    // Secret data stays hidden from a viewer, not from an admin.
    let key = pb::ObjectKey {
        namespace: "default".into(),
        name: "db".into(),
    };
    let seen = v.get_secret(key.clone()).await.unwrap().into_inner();
    assert!(seen.redacted);
    assert_eq!(seen.data.get("password").map(Vec::len), Some(0));
    let listed = v
        .list_secrets(pb::ListObjectsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed
        .secrets
        .iter()
        .all(|s| s.redacted && s.data.values().all(Vec::is_empty)));
    let full = c.client().await.get_secret(key).await.unwrap().into_inner();
    assert!(!full.redacted);
    assert_eq!(full.data["password"], b"hunter2-very-secret");

    // Writes, exec, fault injection and token management are the admin's.
    let denied = |r: Result<_, tonic::Status>, what: &str| {
        let e = r.err().unwrap_or_else(|| panic!("a viewer could {what}"));
        assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
        assert!(
            e.message().contains("needs the admin role"),
            "{}",
            e.message()
        );
    };
    denied(
        v.delete_pod(pb::DeletePodRequest {
            name: "web".into(),
            ..Default::default()
        })
        .await
        .map(drop),
        "delete a pod",
    );
    denied(
        v.apply(pb::ApplyRequest {
            pods: vec![c.pod("web").await],
            ..Default::default()
        })
        .await
        .map(drop),
        "apply",
    );
    denied(
        v.exec(pb::ExecRequest {
            pod: "web".into(),
            command: vec!["id".into()],
            ..Default::default()
        })
        .await
        .map(drop),
        "exec",
    );
    denied(
        v.simulate_node_failure(pb::SimulateNodeFailureRequest {
            name: "n1".into(),
            mode: pb::FailureMode::Crash as i32,
            component: String::new(),
        })
        .await
        .map(drop),
        "inject a fault",
    );
    denied(
        v.list_tokens(pb::ListTokensRequest {}).await.map(drop),
        "list tokens",
    );
    // Nothing changed.
    assert_eq!(c.pod("web").await.phase(), pb::PodPhase::Running);
    assert_eq!(c.node("n1").await.status(), pb::NodeStatus::Healthy);

    // A node token joins nodes, nothing else.
    let node = token(&c, "node").await;
    let e = c
        .client_with_token(Some(&node))
        .await
        .list_pods(pb::ListPodsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("node token"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_capped_per_client() {
    let c = TestCluster::start(Options::process().arg("--max-streams-per-client").arg("2")).await;
    let viewer = token(&c, "viewer").await;
    let v = c.client_with_token(Some(&viewer)).await;
    let w1 = v.clone().watch(pb::WatchRequest::default()).await.unwrap();
    let _w2 = v.clone().watch(pb::WatchRequest::default()).await.unwrap();
    let e = v
        .clone()
        .watch(pb::WatchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("--max-streams-per-client"),
        "{}",
        e.message()
    );
    // Another client is not affected; a closed stream frees its place.
    c.client()
        .await
        .watch(pb::WatchRequest::default())
        .await
        .unwrap();
    drop(w1);
    let deadline = tokio::time::Instant::now() + secs(10);
    loop {
        match v.clone().watch(pb::WatchRequest::default()).await {
            Ok(_) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert_eq!(e.code(), Code::ResourceExhausted);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the closed watch never freed its place: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_required_and_verified() {
    let c = TestCluster::start(Options::process()).await;
    let plain = c.server.replace("https://", "http://");
    // A plain-text client gets no answer from the TLS port.
    let endpoint = kube9_proto::client::tls::endpoint(&plain, None).unwrap();
    let refused = match endpoint.connect().await {
        Err(_) => true,
        Ok(ch) => pb::cluster_service_client::ClusterServiceClient::new(ch)
            .list_pods(pb::ListPodsRequest::default())
            .await
            .is_err(),
    };
    assert!(refused, "plain text was answered on the TLS port");
    // Another cluster's CA does not vouch for this kube9d.
    let other = TestCluster::start(Options::process()).await;
    let e = kube9_proto::client::tls::endpoint(&c.server, Some(&other.ca_pem()))
        .unwrap()
        .connect()
        .await;
    let verified = match e {
        Err(_) => false,
        Ok(ch) => pb::cluster_service_client::ClusterServiceClient::new(ch)
            .list_pods(pb::ListPodsRequest::default())
            .await
            .is_ok(),
    };
    assert!(!verified, "a foreign CA was accepted");
    // The client config names this kube9d over https with its CA.
    let text = std::fs::read_to_string(c.config_path()).unwrap();
    assert!(text.contains(&format!("server: {}", c.server)), "{text}");
    assert!(text.contains("certificate-authority-data"), "{text}");
    assert!(
        text.contains(&format!("current-context: {}", c.cluster_id)),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube9d_keeps_other_contexts_and_its_admin_token_across_restarts() {
    let mut c = TestCluster::start(Options::process()).await;
    let first = c.admin_token();
    // Another cluster's context in the same file stays.
    let mut config = kube9_proto::client::ClientConfig::load(&c.config_path())
        .unwrap()
        .unwrap();
    config.upsert("elsewhere", "https://10.0.0.1:7209", None, "abcdef.00");
    config.save(&c.config_path()).unwrap();
    c.restart_server().await;
    assert_eq!(c.admin_token(), first, "a valid admin token is kept");
    let config = kube9_proto::client::ClientConfig::load(&c.config_path())
        .unwrap()
        .unwrap();
    assert!(config.resolve(Some("elsewhere")).is_ok());
    assert_eq!(config.current_context, c.cluster_id);
    c.client()
        .await
        .list_pods(pb::ListPodsRequest::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_kube9d_serves_plain_text_and_says_so() {
    let c = TestCluster::start(Options::process().arg("--insecure")).await;
    assert!(c.server.starts_with("http://"));
    c.healthy_nodes(&[("n1", "1")]).await;
    // Tokens are still required.
    let e = c
        .client_with_token(None)
        .await
        .list_pods(pb::ListPodsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(
        !c.data_dir.join("tls").exists(),
        "no CA for a plain-text kube9d"
    );
    let log = std::fs::read_to_string(c.data_dir.join("kube9d.log")).unwrap();
    assert!(
        log.contains("--insecure: serving plain text"),
        "{}",
        c.log_tail()
    );
    assert!(
        log.contains("plain-text connection (--insecure)"),
        "{}",
        c.log_tail()
    );
}

/// A hand-joined agent's log, for failure messages and checks.
fn agent_log(c: &TestCluster, name: &str) -> String {
    std::fs::read_to_string(c.data_dir.join(format!("agent-{name}.log"))).unwrap_or_default()
}

/// Waits a while and checks `name` never registered.
async fn never_registers(c: &TestCluster, name: &str) {
    tokio::time::sleep(secs(3)).await;
    assert!(
        !c.nodes().await.iter().any(|n| n.name == name),
        "{name} registered:\n{}",
        agent_log(c, name)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_join_only_with_a_node_token_and_the_right_ca() {
    let c = TestCluster::start(Options::process()).await;
    let dir = |n: &str| c.data_dir.join(format!("state-{n}"));

    // The join line kube9ctl prints (a new node token, the CA pinned by hash) works.
    let created = c
        .client()
        .await
        .create_token(pb::CreateTokenRequest {
            role: "node".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.ca_cert_hash.starts_with("sha256:"));
    let mut pinned = hand_started_agent(
        &c,
        "pinned",
        &dir("pinned"),
        &[
            "--token",
            &created.token,
            "--ca-cert-hash",
            &created.ca_cert_hash,
        ],
    );
    c.wait_node_status("pinned", pb::NodeStatus::Healthy, secs(30))
        .await;

    // Right CA, wrong token: a rogue agent registers nothing.
    let rogue_token = Token::generate().to_string();
    let mut rogue = hand_started_agent(&c, "rogue", &dir("rogue"), &["--token", &rogue_token]);
    // An admin or viewer token is not a join token either.
    let viewer = token(&c, "viewer").await;
    let mut viewer_agent = hand_started_agent(&c, "peeker", &dir("peeker"), &["--token", &viewer]);
    // Right token, a CA hash that is not this cluster's.
    let wrong_pin = format!("sha256:{}", "ab".repeat(32));
    let mut pin_agent = hand_started_agent(
        &c,
        "wrongpin",
        &dir("wrongpin"),
        &["--ca-cert-hash", &wrong_pin],
    );
    // Right token, another cluster's CA file.
    let other = TestCluster::start(Options::process()).await;
    let other_ca = other.ca_file();
    let mut ca_agent = hand_started_agent(
        &c,
        "wrongca",
        &dir("wrongca"),
        &["--ca-file", other_ca.to_str().unwrap()],
    );
    never_registers(&c, "rogue").await;
    never_registers(&c, "peeker").await;
    never_registers(&c, "wrongpin").await;
    never_registers(&c, "wrongca").await;
    let log = std::fs::read_to_string(c.data_dir.join("kube9d.log")).unwrap();
    assert!(log.contains("AgentService/Attach"), "{}", c.log_tail());
    assert!(
        agent_log(&c, "rogue").contains("refused"),
        "{}",
        agent_log(&c, "rogue")
    );
    assert!(
        agent_log(&c, "peeker").contains("node token"),
        "{}",
        agent_log(&c, "peeker")
    );
    for agent in [
        &mut pinned,
        &mut rogue,
        &mut viewer_agent,
        &mut pin_agent,
        &mut ca_agent,
    ] {
        let _ = agent.kill();
        let _ = agent.wait();
    }
}

/// `kube9ctl args` with `envs` on top of the cluster's client config.
fn ctl_with(c: &TestCluster, envs: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = c.ctl_command();
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run kube9ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube9ctl_manages_tokens_and_says_what_a_refusal_means() {
    let c = TestCluster::start(Options::process()).await;
    c.apply(secret_manifest());
    // The config kube9d wrote is all kube9ctl needs.
    let viewer = c
        .ctl_ok(&[
            "token",
            "create",
            "--role",
            "viewer",
            "--ttl",
            "1h",
            "--description",
            "ci reader",
        ])
        .trim()
        .to_string();
    Token::parse(&viewer).expect("token create prints the token alone");
    let list = c.ctl_ok(&["token", "list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with(&viewer[..6]))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        row.contains("viewer")
            && row.contains("ci reader")
            && (row.contains("in 59m") || row.contains("in 1h")),
        "{row}"
    );
    assert!(
        !list.contains(&viewer[7..]),
        "token list shows a secret:\n{list}"
    );

    // A viewer reads; its writes fail with the server's sentence and exit 1.
    let v = [("KUBE9_TOKEN", viewer.as_str())];
    let (code, out, _) = ctl_with(&c, &v, &["get", "secrets"]);
    assert_eq!(code, 0);
    assert!(out.contains("db"), "{out}");
    let (_, out, _) = ctl_with(&c, &v, &["describe", "secret", "db"]);
    assert!(out.contains("hidden") && !out.contains("19 bytes"), "{out}");
    let (_, out, _) = ctl_with(&c, &v, &["get", "secret", "db", "-o", "json"]);
    assert!(
        !out.contains(&kube9_proto::base64::encode(b"hunter2-very-secret")),
        "{out}"
    );
    let (code, _, err) = ctl_with(&c, &v, &["delete", "secret", "db"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("PermissionDenied") && err.contains("needs the admin role"),
        "{err}"
    );
    let (code, _, err) = ctl_with(&c, &v, &["token", "list"]);
    assert_eq!(code, 1, "{err}");

    // Revoked by id or by whole token.
    assert!(c.ctl_ok(&["token", "delete", &viewer]).contains("deleted"));
    let (code, _, err) = ctl_with(&c, &v, &["get", "pods"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Unauthenticated") && err.contains("not accepted"),
        "{err}"
    );
    assert!(!err.contains(&viewer[7..]), "{err}");
    let (code, _, err) = ctl_with(&c, &[], &["token", "delete", &viewer[..6]]);
    assert_eq!(code, 1);
    assert!(err.contains("NotFound"), "{err}");

    // The join line names this server and pins the CA.
    let line = c.ctl_ok(&["token", "join-command"]);
    let hash = kube9_proto::client::tls::ca_hash(&c.ca_pem()).unwrap();
    assert!(
        line.starts_with(&format!(
            "kube9-node --server 127.0.0.1:{} --token ",
            c.port
        )),
        "{line}"
    );
    assert!(line.contains(&format!("--ca-cert-hash {hash}")), "{line}");
    // Run as printed (with a name for NODE), it joins.
    let args: Vec<String> = line
        .split_whitespace()
        .skip(1)
        .map(|a| {
            if a == "NODE" {
                "joined".to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    let mut joined = std::process::Command::new(bin("kube9-node"))
        .args(&args)
        .arg("--state-dir")
        .arg(c.data_dir.join("joined-state"))
        .env_remove("KUBE9_TOKEN")
        .env_remove("KUBE9_SERVER")
        .env("KUBE9_POD_RUNTIME", "process")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    c.wait_node_status("joined", pb::NodeStatus::Healthy, secs(30))
        .await;
    let _ = joined.kill();
    let _ = joined.wait();

    // Wrong scheme or CA: a sentence that says what to change.
    let plain = format!("http://127.0.0.1:{}", c.port);
    let (code, _, err) = ctl_with(&c, &[("KUBE9_SERVER", &plain)], &["get", "pods"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("serves TLS") && err.contains("https://"),
        "{err}"
    );
    let other = TestCluster::start(Options::process()).await;
    let (code, _, err) = ctl_with(
        &c,
        &[],
        &[
            "get",
            "pods",
            "--certificate-authority",
            other.ca_file().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("not signed by the CA in --certificate-authority"),
        "{err}"
    );
    let insecure = TestCluster::start(Options::process().arg("--insecure")).await;
    let tls_url = format!("127.0.0.1:{}", insecure.port);
    let (code, _, err) = ctl_with(&c, &[("KUBE9_SERVER", &tls_url)], &["get", "pods"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("does not speak TLS") && err.contains("http://"),
        "{err}"
    );
    // No config at all: where it was looked for and what to do.
    let (code, _, err) = ctl_with(
        &c,
        &[("KUBE9_CONFIG", "/nonexistent/kube9-config")],
        &["get", "pods"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("no client config at /nonexistent/kube9-config"),
        "{err}"
    );
}
