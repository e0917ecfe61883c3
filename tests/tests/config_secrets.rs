//! ConfigMaps, Secrets and namespaces, used the way the Kubernetes documentation uses them:
//! real kube9d, real agents, kube9ctl as a user types it.

mod support;

use kube9_proto::pb::PodPhase;
use support::*;

/// A secret value no container prints in these tests, to look for where it must not be.
const HIDDEN: &str = "n0t-pr1nted-8c1e";

fn secret_manifest(namespace: &str) -> String {
    // `data` is base64, as the documentation writes it: admin / 1f2d1e2e67df.
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: mysecret
  namespace: {namespace}
type: Opaque
data:
  username: YWRtaW4=
  password: MWYyZDFlMmU2N2Rm
stringData:
  hidden: {HIDDEN}
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_and_config_map_values_reach_the_container_and_nothing_else() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    let out = c.apply(&format!(
        "{}---
apiVersion: v1
kind: ConfigMap
metadata: {{name: game-demo}}
data:
  player_initial_lives: \"3\"
  ui_properties_file_name: user-interface.properties
---
apiVersion: v1
kind: Pod
metadata: {{name: reader}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {BUSYBOX}
    command: [sh, -c, 'echo user=$SECRET_USERNAME lives=$GAME_player_initial_lives pod=$MY_POD ns=$MY_NS; env | grep -c HIDDEN_IS_NOT_HERE || true']
    env:
    - name: SECRET_USERNAME
      valueFrom: {{secretKeyRef: {{name: mysecret, key: username}}}}
    - name: UNUSED
      valueFrom: {{secretKeyRef: {{name: mysecret, key: hidden}}}}
    - name: MY_POD
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    - name: MY_NS
      valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}
    envFrom:
    - prefix: GAME_
      configMapRef: {{name: game-demo}}
",
        secret_manifest("default")
    ));
    assert!(out.contains("secret/mysecret created"), "{out}");
    assert!(out.contains("configmap/game-demo created"), "{out}");
    c.wait_pod_phase("reader", PodPhase::Succeeded, secs(30))
        .await;
    let logs = c.ctl_ok(&["logs", "reader"]);
    assert!(
        logs.starts_with("user=admin lives=3 pod=reader ns=default\n"),
        "{logs}"
    );

    // kubectl's views: keys and sizes, never values; -o yaml has base64 data.
    let described = c.ctl_ok(&["describe", "secret", "mysecret"]);
    assert!(described.contains("password:"), "{described}");
    assert!(described.contains("12 bytes"), "{described}");
    for shown in [
        described.clone(),
        c.ctl_ok(&["get", "secrets"]),
        c.ctl_ok(&["describe", "pod", "reader"]),
        c.ctl_ok(&["get", "pod", "reader", "-o", "yaml"]),
        c.ctl_ok(&["get", "events"]),
    ] {
        assert!(!shown.contains("1f2d1e2e67df"), "{shown}");
        assert!(!shown.contains(HIDDEN), "{shown}");
    }
    let yaml = c.ctl_ok(&["get", "secret", "mysecret", "-o", "yaml"]);
    assert!(yaml.contains("MWYyZDFlMmU2N2Rm"), "{yaml}");

    // At rest: no file of kube9d's data directory (store, logs, the nodes' state) holds a
    // value no container printed, plain or in base64.
    let needles = [
        HIDDEN.to_string(),
        kube9_proto::base64::encode(HIDDEN.as_bytes()),
        "1f2d1e2e67df".to_string(),
        "MWYyZDFlMmU2N2Rm".to_string(),
    ];
    for (path, bytes) in files_under(&c.data_dir) {
        for needle in &needles {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{} holds a secret value",
                path.display()
            );
        }
    }
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_waits_for_a_missing_secret_and_starts_once_it_is_applied() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    c.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: patient}}
spec:
  containers:
  - name: main
    image: {BUSYBOX}
    command: [sh, -c, 'echo got $PASSWORD; sleep 1000']
    env:
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: mysecret, key: password}}}}
"
    ));
    let waiting = c
        .wait_for("CreateContainerConfigError", secs(20), || async {
            let table = c.ctl_ok(&["get", "pod", "patient"]);
            table
                .contains("CreateContainerConfigError")
                .then_some(table)
        })
        .await;
    assert!(waiting.contains("0/1"), "{waiting}");
    let pod = c.pod("patient").await;
    assert!(
        pod.reason.contains("secret \"mysecret\" not found"),
        "{}",
        pod.reason
    );

    c.apply(&secret_manifest("default"));
    c.wait_pod_phase("patient", PodPhase::Running, secs(30))
        .await;
    let logs = c
        .wait_for("the value in the log", secs(20), || async {
            let l = c.ctl_ok(&["logs", "patient"]);
            (!l.is_empty()).then_some(l)
        })
        .await;
    assert_eq!(logs, "got 1f2d1e2e67df\n");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_secret_and_configmap_from_literals_and_files_as_kubectl_does() {
    let c = TestCluster::start(Options::process()).await;
    let file = c.data_dir.join("game.properties");
    std::fs::write(&file, "enemies=aliens\nlives=3\n").unwrap();
    let out = c.ctl_ok(&[
        "create",
        "configmap",
        "game-config",
        "--from-literal=mode=hard",
        &format!("--from-file={}", file.display()),
    ]);
    assert_eq!(out, "configmap/game-config created\n");
    let out = c.ctl_ok(&[
        "create",
        "secret",
        "generic",
        "db-user-pass",
        "--from-literal=username=admin",
        &format!("--from-literal=password={HIDDEN}"),
    ]);
    assert_eq!(out, "secret/db-user-pass created\n");
    let table = c.ctl_ok(&["get", "configmaps"]);
    assert!(table.contains("game-config"), "{table}");
    let described = c.ctl_ok(&["describe", "configmap", "game-config"]);
    assert!(described.contains("enemies=aliens"), "{described}");
    let secrets = c.ctl_ok(&["get", "secrets"]);
    assert!(
        secrets.contains("db-user-pass") && secrets.contains("Opaque"),
        "{secrets}"
    );
    assert!(!secrets.contains(HIDDEN));
    let dup = c.ctl(&[
        "create",
        "secret",
        "generic",
        "db-user-pass",
        "--from-literal=a=b",
    ]);
    assert!(
        !dup.status.success(),
        "a second create of the same name fails"
    );
    let out = c.ctl_ok(&["delete", "secret", "db-user-pass"]);
    assert!(out.contains("deleted"), "{out}");
    let gone = c.ctl(&["get", "secret", "db-user-pass"]);
    assert!(!gone.status.success());
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_namespaces_hold_pods_of_one_name_and_deleting_one_takes_its_pods() {
    let c = TestCluster::start(Options::process()).await;
    c.healthy_nodes(&[("n1", "2")]).await;
    let out = c.apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: staging}\n");
    assert!(out.contains("namespace/staging created"), "{out}");
    let pod = |ns: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: {ns}}}
spec:
  containers:
  - {{name: main, image: {BUSYBOX}, command: [sh, -c, 'echo in $MY_NS; sleep 1000'], env: [{{name: MY_NS, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}]}}
"
        )
    };
    c.apply(&pod("default"));
    c.apply(&pod("staging"));
    let missing = c.ctl_stdin(&["apply", "-f", "-"], Some(&pod("nowhere")));
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("namespaces \"nowhere\" not found"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    c.wait_for("both running", secs(30), || async {
        let all = c.ctl_ok(&["get", "pods", "-A"]);
        (all.matches("Running").count() == 2).then_some(())
    })
    .await;
    let all = c.ctl_ok(&["get", "pods", "-A"]);
    assert!(all.starts_with("NAMESPACE"), "{all}");
    assert!(all.contains("staging") && all.contains("default"), "{all}");
    let only = c.ctl_ok(&["get", "pods", "-n", "staging", "-o", "name"]);
    assert_eq!(only, "pod/web\n");
    c.wait_for("each pod's own log", secs(20), || async {
        let a = c.ctl_ok(&["logs", "web"]);
        let b = c.ctl_ok(&["logs", "web", "-n", "staging"]);
        (a == "in default\n" && b == "in staging\n").then_some(())
    })
    .await;

    let out = c.ctl_ok(&["delete", "namespace", "staging"]);
    assert!(out.contains("namespace \"staging\" deleted"), "{out}");
    let pods = c.ctl_ok(&["get", "pods", "-A", "-o", "name"]);
    assert_eq!(pods, "pod/web\n", "only default's pod is left");
    let namespaces = c.ctl_ok(&["get", "namespaces"]);
    assert!(!namespaces.contains("staging"), "{namespaces}");
    assert!(c.ctl_ok(&["get", "pod", "web"]).contains("Running"));
    let refused = c.ctl(&["delete", "namespace", "default"]);
    assert!(!refused.status.success());
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_by_the_previous_release_loads_with_its_pods_in_default() {
    // tests/fixtures/store-0.1.0: the store of a kube9d built before namespaces existed,
    // holding one pending pod, `legacy-web`.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-0.1.0");
    let c = TestCluster::start_with_store(Options::process(), &fixture, "legacy").await;
    let pods = c.ctl_ok(&["get", "pods", "-A"]);
    assert!(
        pods.contains("default") && pods.contains("legacy-web"),
        "{pods}"
    );
    let pod = c.pod("legacy-web").await;
    assert_eq!(pod.namespace, "default");
    c.create_node("n1", "1");
    c.wait_pod_phase("legacy-web", PodPhase::Running, secs(30))
        .await;
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_and_secret_volumes_are_files_in_the_container() {
    let c = TestCluster::start(Options::process()).await;
    let mut agent = docker_agent(&c, &[]).await;
    c.apply(&format!(
        "{}---
apiVersion: v1
kind: ConfigMap
metadata: {{name: game-demo}}
data:
  game.properties: |
    enemy.types=aliens,monsters
---
apiVersion: v1
kind: Pod
metadata: {{name: files}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: {BUSYBOX}
    imagePullPolicy: Never
    command: [sh, -c, 'cat /config/game.properties /etc/creds/db/user; stat -c %a /etc/creds/db/user; mount | grep -c \"on /etc/creds type tmpfs\"']
    volumeMounts:
    - {{name: config, mountPath: /config}}
    - {{name: creds, mountPath: /etc/creds}}
  volumes:
  - name: config
    configMap: {{name: game-demo}}
  - name: creds
    secret:
      secretName: mysecret
      defaultMode: 0400
      items:
      - {{key: username, path: db/user}}
",
        secret_manifest("default")
    ));
    c.wait_pod_phase("files", PodPhase::Succeeded, secs(60))
        .await;
    let logs = c.ctl_ok(&["logs", "files"]);
    assert_eq!(logs, "enemy.types=aliens,monsters\nadmin400\n1\n");
    c.ctl_ok(&["delete", "pod", "files"]);
    let _ = agent.kill();
    let _ = agent.wait();
    docker_cleanup(&c.id);
    c.finish().await;
}

/// Every regular file under `dir`, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                Ok(t) if t.is_file() => {
                    if let Ok(bytes) = std::fs::read(&path) {
                        out.push((path, bytes));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
