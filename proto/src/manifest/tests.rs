//! Unit tests of the manifest pipeline, run through the public entry points.
//!
//! Each test reads whole manifests, so it covers `raw.rs` (the shape), `convert.rs` (the values)
//! and `diagnose.rs` (the messages) together, as `kube9ctl apply` does.

use super::*;

fn err(text: &str) -> String {
    parse_manifests(text).unwrap_err().to_string()
}

fn pods(text: &str) -> Vec<pb::Pod> {
    parse_manifests(text)
        .unwrap()
        .into_iter()
        .map(|o| match o {
            Object::Pod(p) => p,
            other => panic!("not a pod: {other:?}"),
        })
        .collect()
}

const WEB: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
  annotations:
    note: hello
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 45
  containers:
  - name: nginx
    image: nginx:1.27
    command: ["nginx"]
    args: ["-g", "daemon off;"]
    workingDir: /srv
    env:
    - name: MODE
      value: prod
    - name: EMPTY
    resources:
      requests: {cpu: 500m, memory: 64Mi}
      limits: {cpu: 1, memory: 128Mi}
    volumeMounts:
    - {name: cache, mountPath: /cache}
    - {name: conf, mountPath: /etc/conf, readOnly: true}
    ports:                      # unknown to Kube-9, ignored with a warning
    - containerPort: 80
  volumes:
  - name: cache
    emptyDir: {sizeLimit: 1Gi}
  - name: conf
    configMap: {name: web-conf}
  - name: host
    hostPath: {path: /var/log, type: Directory}
  - name: token
    secret: {secretName: web-token}
  - name: scratch
    emptyDir:
status:
  phase: Running
"#;

#[test]
fn a_full_pod_maps_every_field() {
    let pod = &pods(WEB)[0];
    assert_eq!(pod.name, "web");
    assert_eq!(pod.labels["app"], "web");
    assert_eq!(pod.annotations["note"], "hello");
    assert_eq!(pod.restart_policy, "OnFailure");
    assert_eq!(pod.termination_grace_period_seconds, Some(45));
    assert_eq!(pod.phase, pb::PodPhase::Unspecified as i32);
    assert_eq!(pod.cpu_request_millis, 500);
    let c = &pod.containers[0];
    assert_eq!((c.name.as_str(), c.image.as_str()), ("nginx", "nginx:1.27"));
    assert_eq!(c.command, ["nginx"]);
    assert_eq!(c.args, ["-g", "daemon off;"]);
    assert_eq!(c.working_dir, "/srv");
    assert_eq!(
        c.env[0],
        pb::EnvVar {
            name: "MODE".into(),
            value: "prod".into(),
            ..Default::default()
        }
    );
    assert_eq!(c.env[1].value, "");
    assert_eq!((c.cpu_request_millis, c.cpu_limit_millis), (500, 1000));
    assert_eq!(
        (c.memory_request_bytes, c.memory_limit_bytes),
        (64 << 20, 128 << 20)
    );
    assert!(c.volume_mounts[1].read_only);
    assert_eq!(c.volume_mounts[1].mount_path, "/etc/conf");
    let volumes: Vec<_> = pod
        .volumes
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.kind.as_str(),
                v.source.as_str(),
                v.size_bytes,
            )
        })
        .collect();
    assert_eq!(
        volumes,
        [
            ("cache", "emptyDir", "", 1 << 30),
            ("conf", "configMap", "web-conf", 0),
            ("host", "hostPath", "/var/log", 0),
            ("token", "secret", "web-token", 0),
            ("scratch", "emptyDir", "", 0),
        ]
    );
}

#[test]
fn block_flow_and_json_styles_give_the_same_pod() {
    let block = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources:\n      requests:\n        cpu: 250m\n";
    let flow = "{apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: busybox, resources: {requests: {cpu: 250m}}}]}}";
    let json = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": "250m"}}}]}}"#;
    let a = pods(block);
    assert_eq!(a, pods(flow));
    assert_eq!(a, pods(json));
    assert_eq!(a[0].cpu_request_millis, 250);
}

#[test]
fn multi_document_streams_skip_empty_documents() {
    let text = "---\n# just a comment\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {zone: a}}\nspec:\n  capacity: {cpu: 4}\n---\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n...\n";
    let objects = parse_manifests(text).unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!((objects[0].kind(), objects[0].name()), ("Node", "n1"));
    assert_eq!(
        objects[0],
        Object::Node(pb::NodeSpec {
            name: "n1".into(),
            cpu_millis: 4000,
            labels: [("zone".to_string(), "a".to_string())].into(),
            ..Default::default()
        })
    );
    assert_eq!((objects[1].kind(), objects[1].name()), ("Pod", "p"));
    assert!(parse_manifests("").unwrap().is_empty());
    assert!(parse_manifests("---\n---\n").unwrap().is_empty());
}

#[test]
fn cpu_may_be_a_string_or_a_number() {
    let doc = |cpu: &str| {
        format!("{{apiVersion: v1, kind: Pod, metadata: {{name: p}}, spec: {{containers: [{{name: c, image: x, resources: {{requests: {{cpu: {cpu}}}}}}}]}}}}")
    };
    assert_eq!(pods(&doc("\"2\""))[0].cpu_request_millis, 2000);
    assert_eq!(pods(&doc("2"))[0].cpu_request_millis, 2000);
    assert_eq!(pods(&doc("0.5"))[0].cpu_request_millis, 500);
    assert_eq!(pods(&doc("'100m'"))[0].cpu_request_millis, 100);
}

#[test]
fn the_cpu_request_defaults_to_the_limit_and_sums_over_containers() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: x, resources: {limits: {cpu: 300m}}}\n  - {name: b, image: x, resources: {requests: {cpu: 200m}}}\n  - {name: c, image: x}\n";
    let pod = &pods(text)[0];
    assert_eq!(pod.containers[0].cpu_request_millis, 300);
    assert_eq!(pod.containers[2].cpu_request_millis, 0);
    assert_eq!(pod.cpu_request_millis, 500);
}

#[test]
fn node_cpu_comes_from_spec_or_status_capacity() {
    let spec = "{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: 2500m}}}";
    let status = "{apiVersion: v1, kind: Node, metadata: {name: n}, status: {capacity: {cpu: '8', memory: 32Gi}}}";
    let cpu = |t: &str| match &parse_manifests(t).unwrap()[0] {
        Object::Node(n) => n.cpu_millis,
        other => panic!("{other:?}"),
    };
    assert_eq!(cpu(spec), 2500);
    assert_eq!(cpu(status), 8000);
    assert_eq!(
        err("{apiVersion: v1, kind: Node, metadata: {name: n}}"),
        "document 1 (node \"n\"): spec.capacity.cpu: required: the node's CPU capacity, e.g. \"4\" or \"4000m\""
    );
    assert_eq!(
        err("{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: -2}}}"),
        "document 1 (node \"n\"): spec.capacity.cpu: invalid CPU quantity \"-2\": must not be negative"
    );
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    let e = err("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [web\n");
    assert!(e.starts_with("document 1: invalid YAML: "), "{e}");
    assert!(e.contains("line "), "{e}");
    assert!(e.contains("column "), "{e}");
    let e = err("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n---\nkind: Pod\n  bad: indent\n");
    assert!(e.starts_with("document 2: invalid YAML: "), "{e}");
}

#[test]
fn kind_and_api_version_are_required_and_checked() {
    assert_eq!(
        err("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"),
        "document 1: unknown kind \"Deployment\" (supported: Pod, Node, Namespace, ConfigMap, Secret)"
    );
    assert_eq!(
        err("apiVersion: v1\nmetadata: {name: web}\n"),
        "document 1: missing field \"kind\" (supported: Pod, Node, Namespace, ConfigMap, Secret)"
    );
    assert_eq!(
        err("kind: Pod\nmetadata: {name: web}\n"),
        "document 1: missing field \"apiVersion\" (use apiVersion: v1)"
    );
    assert_eq!(
        err("apiVersion: v2\nkind: Pod\nmetadata: {name: web}\n"),
        "document 1: unsupported apiVersion \"v2\" for kind Pod (supported: v1)"
    );
    assert_eq!(
        err("just a string"),
        "document 1: expected a Kubernetes object (a mapping with apiVersion and kind), got a string"
    );
    // A kind whose spec does not even fit the Pod shape is still reported as unknown.
    assert_eq!(
        err("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {volumes: 3}\n"),
        "document 1: unknown kind \"Service\" (supported: Pod, Node, Namespace, ConfigMap, Secret)"
    );
}

#[test]
fn wrong_field_types_name_the_path() {
    let e = err("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: nginx\n");
    assert!(e.starts_with("document 1 (pod \"web\"): spec.containers: invalid type: string \"nginx\", expected a sequence"), "{e}");
    let e = err("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: c\n    image: x\n    command: sleep 1\n");
    assert!(
        e.contains("spec.containers[0].command: invalid type"),
        "{e}"
    );
}

#[test]
fn bad_quantities_name_document_pod_and_field() {
    let good = "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: c, image: x}]}\n";
    let bad = |cpu: &str| {
        format!("{good}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  containers:\n  - name: c\n    image: x\n    resources:\n      requests: {{cpu: {cpu}}}\n")
    };
    assert_eq!(
        err(&bad("abc")),
        "document 2 (pod \"web\"): spec.containers[0].resources.requests.cpu: invalid CPU quantity \"abc\""
    );
    assert_eq!(
        err(&bad("-1")),
        "document 2 (pod \"web\"): spec.containers[0].resources.requests.cpu: invalid CPU quantity \"-1\": must not be negative"
    );
    assert!(err(&bad("5000")).ends_with("more than 1000 cores, the maximum"));
    assert!(err(&bad("0.0001")).ends_with("finer than 1m, the smallest CPU unit"));
    let e = err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x, resources: {limits: {memory: 10m}}}]}}");
    assert!(e.starts_with("document 1 (pod \"p\"): spec.containers[0].resources.limits.memory: invalid memory quantity \"10m\""), "{e}");
}

#[test]
fn validation_runs_on_every_object() {
    assert_eq!(
        err("{apiVersion: v1, kind: Pod, metadata: {name: Web_1}, spec: {containers: [{name: c, image: x}]}}"),
        "document 1 (pod \"Web_1\"): metadata.name: invalid pod name \"Web_1\": must consist of lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters"
    );
    assert_eq!(
        err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x}, {name: c, image: y}]}}"),
        "document 1 (pod \"p\"): spec.containers[1].name: duplicate container name \"c\""
    );
    assert_eq!(
        err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x, volumeMounts: [{name: data, mountPath: /data}]}]}}"),
        "document 1 (pod \"p\"): spec.containers[0].volumeMounts[0].name: volume \"data\" is not declared in spec.volumes"
    );
    assert_eq!(
        err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: []}}"),
        "document 1 (pod \"p\"): spec.containers: a pod needs at least one container"
    );
    assert_eq!(
        err("{apiVersion: v1, kind: Pod, metadata: {}, spec: {containers: [{name: c, image: x}]}}"),
        "document 1 (pod): metadata.name: pod name must not be empty"
    );
}

#[test]
fn duplicate_objects_in_one_manifest_are_refused() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: c, image: x}]}\n";
    let node = "apiVersion: v1\nkind: Node\nmetadata: {name: web}\nspec: {capacity: {cpu: 1}}\n";
    assert_eq!(
        err(&format!("{pod}---\n{node}---\n{pod}")),
        "document 3 (pod \"web\"): pod \"web\" is defined twice (first in document 1)"
    );
    // The same name under two kinds is fine.
    assert_eq!(
        parse_manifests(&format!("{pod}---\n{node}")).unwrap().len(),
        2
    );
}

#[test]
fn unsupported_volume_sources_and_env_sources_are_refused() {
    assert_eq!(
        err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x}], volumes: [{name: v, persistentVolumeClaim: {claimName: x}}]}}"),
        "document 1 (pod \"p\"): spec.volumes[0]: unsupported volume source \"persistentVolumeClaim\" (supported: emptyDir, hostPath, configMap, secret)"
    );
    assert_eq!(
        err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x}], volumes: [{name: v, emptyDir: {}, hostPath: {path: /x}}]}}"),
        "document 1 (pod \"p\"): spec.volumes[0]: more than one volume source (emptyDir, hostPath); give exactly one"
    );
    assert_eq!(
        err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x, env: [{name: A, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}]}]}}"),
        "document 1 (pod \"p\"): spec.containers[0].env[0].valueFrom.resourceFieldRef: not supported (supported: configMapKeyRef, secretKeyRef, fieldRef)"
    );
}

#[test]
fn null_sections_read_as_absent() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\nspec:\n  volumes:\n  containers:\n  - name: c\n    image: x\n    resources:\n      requests:\n";
    assert_eq!(pods(text)[0].cpu_request_millis, 0);
}

fn warnings(text: &str) -> Vec<String> {
    let (_, warnings) = parse_manifests_with_warnings(text).unwrap();
    warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn unknown_fields_are_accepted_with_one_warning_each() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: prod\nspec:\n  containers:\n  - name: c\n    image: x\n    terminationMessagePath: /dev/log\n";
    let (objects, _) = parse_manifests_with_warnings(text).unwrap();
    assert_eq!(objects, parse_manifests(text).unwrap());
    assert_eq!(objects.len(), 1);
    assert_eq!(
        warnings(text),
        ["document 1 (pod \"web\"): unknown field \"spec.containers[0].terminationMessagePath\" ignored"]
    );
    // The full example: `ports` and an unknown top-level field are reported, `status` is not.
    let text = format!("{WEB}extra: 1\n");
    assert_eq!(
        warnings(&text),
        [
            "document 1 (pod \"web\"): unknown field \"spec.containers[0].ports\" ignored",
            "document 1 (pod \"web\"): unknown field \"spec.volumes[2].hostPath.type\" ignored",
            "document 1 (pod \"web\"): unknown field \"extra\" ignored",
        ]
    );
}

#[test]
fn clean_manifests_and_server_written_fields_give_no_warnings() {
    let clean = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default, labels: {a: b}}\nspec: {restartPolicy: Never, terminationGracePeriodSeconds: 0, containers: [{name: c, image: x, resources: {requests: {cpu: 1}}}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {capacity: {cpu: 4}}\n";
    assert!(warnings(clean).is_empty(), "{:?}", warnings(clean));
    let read_back = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, uid: u-1, creationTimestamp: '2024-03-01T12:00:00Z', resourceVersion: '7'}\nspec: {containers: [{name: c, image: x}]}\nstatus: {phase: Running, containerStatuses: [{name: c}]}\n";
    assert!(warnings(read_back).is_empty(), "{:?}", warnings(read_back));
}

#[test]
fn fields_of_the_other_kind_are_reported_as_ignored() {
    let text = "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {capacity: {cpu: 1}, containers: [{name: c, image: x}]}}\n---\n{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: 1}, restartPolicy: Never, terminationGracePeriodSeconds: 5}}\n";
    assert_eq!(
        warnings(text),
        [
            "document 1 (pod \"p\"): unknown field \"spec.capacity\" ignored",
            "document 2 (node \"n\"): unknown field \"spec.restartPolicy\" ignored",
            "document 2 (node \"n\"): unknown field \"spec.terminationGracePeriodSeconds\" ignored",
        ]
    );
}

#[test]
fn a_grace_period_out_of_range_is_refused() {
    let text = "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {terminationGracePeriodSeconds: -5, containers: [{name: c, image: x}]}}";
    assert_eq!(
        err(text),
        "document 1 (pod \"p\"): spec.terminationGracePeriodSeconds: -5 is out of range: give 0 to 86400 seconds"
    );
    let text = "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {terminationGracePeriodSeconds: soon, containers: [{name: c, image: x}]}}";
    assert!(
        err(text).contains("terminationGracePeriodSeconds"),
        "{}",
        err(text)
    );
}

#[test]
fn apply_request_splits_pods_and_nodes() {
    let text = "{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: 1}}}\n---\n{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x}]}}";
    let request = apply_request(parse_manifests(text).unwrap(), true);
    assert!(request.dry_run);
    assert_eq!(request.pods.len(), 1);
    assert_eq!(request.nodes.len(), 1);
}

#[test]
fn init_containers_probes_and_pull_policies_are_read() {
    let text = "apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  initContainers:
  - name: setup
    image: kube9-test/busybox:1
    command: [sh, -c, 'echo hi > /work/index.html']
    resources: {requests: {cpu: 2, memory: 1Gi}}
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: web
    image: kube9-test/busybox:1
    imagePullPolicy: Never
    resources: {requests: {cpu: 500m, memory: 64Mi}}
    volumeMounts: [{name: work, mountPath: /srv, subPath: site, readOnly: true}]
    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 2
      failureThreshold: 1
    readinessProbe:
      exec: {command: [cat, /srv/index.html]}
    startupProbe:
      tcpSocket: {port: 8080}
  volumes:
  - name: work
    emptyDir: {medium: Memory, sizeLimit: 16Mi}
";
    let (objects, warnings) = parse_manifests_with_warnings(text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let Object::Pod(pod) = &objects[0] else {
        panic!()
    };
    assert_eq!(pod.init_containers[0].name, "setup");
    assert_eq!(pod.init_containers[0].volume_mounts[0].mount_path, "/work");
    // Effective request: the largest init container wins where it asks for more.
    assert_eq!(pod.cpu_request_millis, 2000);
    assert_eq!(pod.memory_request_bytes, 1 << 30);
    let web = &pod.containers[0];
    assert_eq!(web.image_pull_policy, "Never");
    assert_eq!(web.volume_mounts[0].sub_path, "site");
    assert!(web.volume_mounts[0].read_only);
    use crate::pb::probe::Handler;
    let live = web.liveness_probe.as_ref().unwrap();
    assert!(
        matches!(&live.handler, Some(Handler::HttpGet(g)) if g.port == 8080 && g.path == "/healthz")
    );
    assert_eq!((live.period_seconds, live.failure_threshold), (2, 1));
    assert!(
        matches!(&web.readiness_probe.as_ref().unwrap().handler, Some(Handler::Exec(e)) if e.command[0] == "cat")
    );
    assert!(
        matches!(&web.startup_probe.as_ref().unwrap().handler, Some(Handler::TcpSocket(t)) if t.port == 8080)
    );
    assert_eq!(pod.volumes[0].medium, "Memory");
    assert_eq!(pod.volumes[0].size_bytes, 16 << 20);
}

#[test]
fn bad_probes_and_pull_policies_are_refused_with_the_field() {
    let base = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x\n";
    let e = err(&format!("{base}    imagePullPolicy: Sometimes\n"));
    assert!(
        e.contains("spec.containers[0].imagePullPolicy: unsupported value \"Sometimes\""),
        "{e}"
    );
    let e = err(&format!("{base}    livenessProbe: {{periodSeconds: 3}}\n"));
    assert!(
        e.contains(
            "spec.containers[0].livenessProbe: give exactly one of exec, httpGet and tcpSocket"
        ),
        "{e}"
    );
    let e = err(&format!(
        "{base}    readinessProbe: {{httpGet: {{port: http}}}}\n"
    ));
    assert!(e.contains("named port \"http\" is not supported"), "{e}");
    let e = err(&format!(
        "{base}    readinessProbe: {{tcpSocket: {{port: 70000}}}}\n"
    ));
    assert!(e.contains("70000 is not a port"), "{e}");
    let e = err(&format!(
        "{base}    livenessProbe: {{httpGet: {{port: 8443, scheme: FTP}}}}\n"
    ));
    assert!(
        e.contains(
            "livenessProbe.httpGet.scheme: unsupported value \"FTP\" (supported: HTTP, HTTPS)"
        ),
        "{e}"
    );
    let https = format!("{base}    livenessProbe: {{httpGet: {{port: 8443, scheme: HTTPS}}}}\n");
    assert!(parse_manifests(&https).is_ok());
    let e = err(&format!(
        "{base}    livenessProbe: {{exec: {{command: []}}}}\n"
    ));
    assert!(
        e.contains("livenessProbe.exec.command: must not be empty"),
        "{e}"
    );
    let e = err("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n  - name: c\n    image: x\n  containers:\n  - name: c\n    image: x\n");
    assert!(
        e.contains("spec.initContainers[0].name: duplicate container name \"c\""),
        "{e}"
    );
}

#[test]
fn a_node_reads_its_memory_capacity() {
    let Object::Node(n) = &parse_manifests("{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: '2', memory: 4Gi}}}").unwrap()[0] else { panic!() };
    assert_eq!(n.memory_bytes, 4 << 30);
    let Object::Node(n) = &parse_manifests("{apiVersion: v1, kind: Node, metadata: {name: n}, status: {capacity: {cpu: '2', memory: 1Gi}}}").unwrap()[0] else { panic!() };
    assert_eq!(n.memory_bytes, 1 << 30);
}

// ConfigMaps, Secrets, Namespaces, and the pods that use them, as the Kubernetes documentation
// writes them.

/// The Secret of "Managing Secrets using Configuration File": admin / 1f2d1e2e67df.
const MYSECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: mysecret
type: Opaque
data:
  username: YWRtaW4=
  password: MWYyZDFlMmU2N2Rm
";

/// The ConfigMap of "Concepts > ConfigMaps".
const GAME_DEMO: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: game-demo
data:
  # property-like keys; each key maps to a simple value
  player_initial_lives: "3"
  ui_properties_file_name: "user-interface.properties"

  # file-like keys
  game.properties: |
    enemy.types=aliens,monsters
    player.maximum-lives=5
  user-interface.properties: |
    color.good=purple
    color.bad=yellow
    allow.textmode=true
"#;

/// The pod of "Concepts > ConfigMaps", with a secret key, `envFrom`, `fieldRef`s and a secret
/// volume added from the pages on Secrets and the downward API.
const CONFIGMAP_DEMO_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: configmap-demo-pod
spec:
  containers:
    - name: demo
      image: alpine
      command: ["sleep", "3600"]
      env:
        # Define the environment variable
        - name: PLAYER_INITIAL_LIVES # Notice that the case is different here
                                     # from the key name in the ConfigMap.
          valueFrom:
            configMapKeyRef:
              name: game-demo           # The ConfigMap this value comes from.
              key: player_initial_lives # The key to fetch.
        - name: UI_PROPERTIES_FILE_NAME
          valueFrom:
            configMapKeyRef:
              name: game-demo
              key: ui_properties_file_name
        - name: SECRET_USERNAME
          valueFrom:
            secretKeyRef:
              name: mysecret
              key: username
              optional: true
        - name: MY_NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: MY_POD_IP
          valueFrom:
            fieldRef:
              apiVersion: v1
              fieldPath: status.podIP
      envFrom:
        - prefix: CONFIG_
          configMapRef:
            name: game-demo
        - secretRef:
            name: mysecret
            optional: true
      volumeMounts:
      - name: config
        mountPath: "/config"
        readOnly: true
      - name: foo
        mountPath: "/etc/foo"
        readOnly: true
  volumes:
  # You set volumes at the Pod level, then mount them into containers inside that Pod
  - name: config
    configMap:
      # Provide the name of the ConfigMap you want to mount.
      name: game-demo
      # An array of keys from the ConfigMap to create as files
      items:
      - key: "game.properties"
        path: "game.properties"
      - key: "user-interface.properties"
        path: "user-interface.properties"
  - name: foo
    secret:
      secretName: mysecret
      defaultMode: 0400
      optional: false
      items:
      - key: username
        path: my-group/my-username
        mode: 420
"#;

const DEVELOPMENT: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: development
  labels:
    name: development
";

fn one(text: &str) -> Object {
    let (mut objects, warnings) = parse_manifests_with_warnings(text).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(objects.len(), 1);
    objects.pop().unwrap()
}

fn secret(text: &str) -> pb::Secret {
    match one(text) {
        Object::Secret(s) => s,
        other => panic!("not a secret: {other:?}"),
    }
}

fn config_map(text: &str) -> pb::ConfigMap {
    match one(text) {
        Object::ConfigMap(cm) => cm,
        other => panic!("not a config map: {other:?}"),
    }
}

#[test]
fn the_documentations_secret_decodes_its_base64_data() {
    let object = one(MYSECRET);
    assert_eq!(
        (object.kind(), object.name(), object.namespace()),
        ("Secret", "mysecret", "default")
    );
    let Object::Secret(s) = object else { panic!() };
    assert_eq!(s.namespace, "", "left for the client to fill in");
    assert_eq!(s.r#type, "Opaque");
    assert_eq!(s.data["username"], b"admin");
    assert_eq!(s.data["password"], b"1f2d1e2e67df");
    assert_eq!(s.data.len(), 2);
}

#[test]
fn string_data_is_merged_over_data_and_the_type_defaults_to_opaque() {
    let s = secret("apiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: prod, labels: {app: db}}\ndata: {username: YWRtaW4=, password: MWYyZDFlMmU2N2Rm}\nstringData: {password: s3cr3t, config.yaml: \"apiUrl: https://my.api.com/api/v1\\n\"}\n");
    assert_eq!(s.namespace, "prod");
    assert_eq!(s.labels["app"], "db");
    assert_eq!(s.r#type, "Opaque");
    assert_eq!(s.data["username"], b"admin");
    assert_eq!(s.data["password"], b"s3cr3t");
    assert_eq!(
        s.data["config.yaml"],
        b"apiUrl: https://my.api.com/api/v1\n"
    );
    // Empty and null values are empty; line breaks inside base64 are skipped.
    let s = secret("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/basic-auth\ndata:\n  username: \"\"\n  password:\n  note: |\n    YWRt\n    aW4=\n");
    assert_eq!(s.r#type, "kubernetes.io/basic-auth");
    assert_eq!(s.data["username"], b"");
    assert_eq!(s.data["password"], b"");
    assert_eq!(s.data["note"], b"admin");
}

#[test]
fn the_documentations_config_map_keeps_property_and_file_like_keys() {
    let cm = config_map(GAME_DEMO);
    assert_eq!((cm.name.as_str(), cm.namespace.as_str()), ("game-demo", ""));
    assert_eq!(cm.data["player_initial_lives"], "3");
    assert_eq!(
        cm.data["ui_properties_file_name"],
        "user-interface.properties"
    );
    assert_eq!(
        cm.data["game.properties"],
        "enemy.types=aliens,monsters\nplayer.maximum-lives=5\n"
    );
    assert_eq!(
        cm.data["user-interface.properties"],
        "color.good=purple\ncolor.bad=yellow\nallow.textmode=true\n"
    );
    assert!(cm.binary_data.is_empty());
    let cm = config_map("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bin}\nbinaryData: {logo.png: iVBORw0KGgo=}\ndata: {mode: hard, octal: 0644}\n");
    assert_eq!(
        cm.binary_data["logo.png"],
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n']
    );
    // An unquoted 0644 is text as written, not a number.
    assert_eq!(cm.data["octal"], "0644");
}

#[test]
fn a_pod_reads_config_map_and_secret_keys_fields_env_from_and_volumes() {
    use pb::env_from_source::Source as From;
    use pb::env_var_source::Source;
    let Object::Pod(pod) = one(CONFIGMAP_DEMO_POD) else {
        panic!()
    };
    let c = &pod.containers[0];
    let source = |i: usize| {
        assert_eq!(c.env[i].value, "");
        c.env[i]
            .value_from
            .as_ref()
            .unwrap()
            .source
            .clone()
            .unwrap()
    };
    let key = |name: &str, key: &str, optional: bool| pb::KeySelector {
        name: name.into(),
        key: key.into(),
        optional,
    };
    assert_eq!(c.env[0].name, "PLAYER_INITIAL_LIVES");
    assert_eq!(
        source(0),
        Source::ConfigMapKeyRef(key("game-demo", "player_initial_lives", false))
    );
    assert_eq!(
        source(1),
        Source::ConfigMapKeyRef(key("game-demo", "ui_properties_file_name", false))
    );
    assert_eq!(
        source(2),
        Source::SecretKeyRef(key("mysecret", "username", true))
    );
    assert_eq!(source(3), Source::FieldPath("spec.nodeName".into()));
    assert_eq!(source(4), Source::FieldPath("status.podIP".into()));
    assert_eq!(
        c.env_from,
        [
            pb::EnvFromSource {
                prefix: "CONFIG_".into(),
                source: Some(From::ConfigMapRef(pb::ObjectSelector {
                    name: "game-demo".into(),
                    optional: false,
                })),
            },
            pb::EnvFromSource {
                prefix: String::new(),
                source: Some(From::SecretRef(pb::ObjectSelector {
                    name: "mysecret".into(),
                    optional: true,
                })),
            },
        ]
    );
    let config = &pod.volumes[0];
    assert_eq!(
        (config.kind.as_str(), config.source.as_str()),
        ("configMap", "game-demo")
    );
    assert_eq!((config.default_mode, config.optional), (0, false));
    let items: Vec<_> = config
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.path.as_str(), i.mode))
        .collect();
    assert_eq!(
        items,
        [
            ("game.properties", "game.properties", 0),
            ("user-interface.properties", "user-interface.properties", 0),
        ]
    );
    let foo = &pod.volumes[1];
    assert_eq!(
        (foo.kind.as_str(), foo.source.as_str()),
        ("secret", "mysecret")
    );
    // 0400 is octal, as Kubernetes (YAML 1.1) reads it; 420 is decimal for 0644.
    assert_eq!(foo.default_mode, 0o400);
    assert_eq!(
        foo.items,
        [pb::KeyToPath {
            key: "username".into(),
            path: "my-group/my-username".into(),
            mode: 0o644,
        }]
    );
}

#[test]
fn file_modes_are_octal_with_a_leading_zero_or_decimal() {
    let mode = |m: &str| {
        let text = format!("{{apiVersion: v1, kind: Pod, metadata: {{name: p}}, spec: {{containers: [{{name: c, image: x}}], volumes: [{{name: v, secret: {{secretName: s, defaultMode: {m}}}}}]}}}}");
        parse_manifests(&text).map(|objects| match &objects[0] {
            Object::Pod(p) => p.volumes[0].default_mode,
            _ => panic!(),
        })
    };
    assert_eq!(mode("0644").unwrap(), 0o644);
    assert_eq!(mode("0o600").unwrap(), 0o600);
    assert_eq!(mode("256").unwrap(), 0o400);
    assert_eq!(mode("511").unwrap(), 0o777);
    assert_eq!(mode("0").unwrap(), 0);
    for bad in ["644", "512", "-1", "0888", "1.5", "rw"] {
        let e = mode(bad).unwrap_err().to_string();
        assert!(
            e.starts_with("document 1 (pod \"p\"): spec.volumes[0].secret.defaultMode: must be a file mode between 0 and 0777 (octal) or 511 (decimal), got "),
            "{bad}: {e}"
        );
    }
}

#[test]
fn the_documentations_namespace_is_cluster_wide() {
    let object = one(DEVELOPMENT);
    assert_eq!(
        (object.kind(), object.name(), object.namespace()),
        ("Namespace", "development", "")
    );
    let Object::Namespace(ns) = object else {
        panic!()
    };
    assert_eq!(ns.labels["name"], "development");
    // A namespace on a cluster-wide object is ignored silently, as kubectl does.
    let Object::Namespace(ns) =
        one("apiVersion: v1\nkind: Namespace\nmetadata: {name: dev, namespace: other}\n")
    else {
        panic!()
    };
    assert_eq!(ns.name, "dev");
    let node = one("{apiVersion: v1, kind: Node, metadata: {name: n, namespace: prod}, spec: {capacity: {cpu: 1}}}");
    assert_eq!(node.namespace(), "");
    assert_eq!(
        err("apiVersion: v1\nkind: Namespace\nmetadata: {name: my.team}\n"),
        "document 1 (namespace \"my.team\"): metadata.name: invalid namespace name \"my.team\": must consist of lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters"
    );
}

#[test]
fn a_pod_keeps_its_namespace_and_names_are_unique_per_namespace() {
    let pod = |ns: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: web{ns}}}\nspec: {{containers: [{{name: c, image: x}}]}}\n")
    };
    let objects = parse_manifests(&pod(", namespace: prod")).unwrap();
    let Object::Pod(p) = &objects[0] else {
        panic!()
    };
    assert_eq!(p.namespace, "prod");
    assert_eq!(objects[0].namespace(), "prod");
    let Object::Pod(p) = &parse_manifests(&pod("")).unwrap()[0] else {
        panic!()
    };
    assert_eq!((p.namespace.as_str(), p.ns()), ("", "default"));
    // The same name in two namespaces is two objects; twice in one is refused.
    let two = format!(
        "{}---\n{}",
        pod(", namespace: prod"),
        pod(", namespace: dev")
    );
    assert_eq!(parse_manifests(&two).unwrap().len(), 2);
    let again = format!(
        "{}---\n{}",
        pod(", namespace: prod"),
        pod(", namespace: prod")
    );
    assert_eq!(
        err(&again),
        "document 2 (pod \"web\"): pod \"web\" is defined twice (first in document 1)"
    );
    assert_eq!(
        err(&pod(", namespace: Prod")),
        "document 1 (pod \"web\"): metadata.namespace: invalid namespace name \"Prod\": must consist of lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters"
    );
}

#[test]
fn apply_request_carries_every_kind() {
    let text = [DEVELOPMENT, GAME_DEMO, MYSECRET, CONFIGMAP_DEMO_POD].join("---\n");
    let objects = parse_manifests(&text).unwrap();
    let kinds: Vec<_> = objects.iter().map(Object::kind).collect();
    assert_eq!(kinds, ["Namespace", "ConfigMap", "Secret", "Pod"]);
    let request = apply_request(objects, false);
    assert_eq!(request.namespaces[0].name, "development");
    assert_eq!(request.config_maps[0].name, "game-demo");
    assert_eq!(request.secrets[0].name, "mysecret");
    assert_eq!(request.pods[0].name, "configmap-demo-pod");
    assert!(request.nodes.is_empty());
}

fn pod_with(container_fields: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: x\n{container_fields}")
}

#[test]
fn env_sources_are_checked_with_the_field() {
    let e = err(&pod_with("    env:\n    - name: A\n      value: x\n      valueFrom: {configMapKeyRef: {name: cm, key: a}}\n"));
    assert_eq!(e, "document 1 (pod \"p\"): spec.containers[0].env[0].valueFrom: must not be set when \"value\" is not empty: give one of them");
    // An empty value next to valueFrom is tolerated, as in Kubernetes.
    assert!(parse_manifests(&pod_with("    env:\n    - name: A\n      value: \"\"\n      valueFrom: {configMapKeyRef: {name: cm, key: a}}\n")).is_ok());
    let e = err(&pod_with(
        "    env:\n    - name: HOST_IP\n      valueFrom: {fieldRef: {fieldPath: status.hostIP}}\n",
    ));
    assert_eq!(e, "document 1 (pod \"p\"): spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: unsupported value \"status.hostIP\" (supported: metadata.name, metadata.namespace, spec.nodeName, status.podIP)");
    let e = err(&pod_with("    env:\n    - name: A\n      valueFrom: {configMapKeyRef: {name: cm, key: a}, secretKeyRef: {name: s, key: a}}\n"));
    assert_eq!(e, "document 1 (pod \"p\"): spec.containers[0].env[0].valueFrom: more than one source (configMapKeyRef, secretKeyRef); give exactly one of configMapKeyRef, secretKeyRef and fieldRef");
    let e = err(&pod_with("    env:\n    - name: A\n      valueFrom: {}\n"));
    assert_eq!(e, "document 1 (pod \"p\"): spec.containers[0].env[0].valueFrom: give exactly one of configMapKeyRef, secretKeyRef and fieldRef");
    let e = err(&pod_with(
        "    env:\n    - name: A\n      valueFrom: {secretKeyRef: {key: a}}\n",
    ));
    assert_eq!(e, "document 1 (pod \"p\"): spec.containers[0].env[0].valueFrom.secretKeyRef.name: must not be empty");
    let e = err(&pod_with(
        "    env:\n    - name: A\n      valueFrom: {secretKeyRef: {name: s, key: 'a b'}}\n",
    ));
    assert!(e.starts_with("document 1 (pod \"p\"): spec.containers[0].env[0].valueFrom.secretKeyRef.key: invalid key \"a b\""), "{e}");
    let e = err(&pod_with(
        "    env:\n    - name: A\n      valueFrom: {configMapKeyRef: {name: Game_Demo, key: a}}\n",
    ));
    assert!(e.starts_with("document 1 (pod \"p\"): spec.containers[0].env[0].valueFrom.configMapKeyRef.name: invalid configmap name \"Game_Demo\""), "{e}");
    let e = err(&pod_with("    env:\n    - name: A=B\n      value: x\n"));
    assert!(e.starts_with("document 1 (pod \"p\"): spec.containers[0].env[0].name: invalid environment variable name \"A=B\""), "{e}");
    let e = err(&pod_with("    envFrom:\n    - prefix: X_\n"));
    assert_eq!(e, "document 1 (pod \"p\"): spec.containers[0].envFrom[0]: give exactly one of configMapRef and secretRef");
    let e = err(&pod_with(
        "    envFrom:\n    - {configMapRef: {name: a}, secretRef: {name: b}}\n",
    ));
    assert_eq!(e, "document 1 (pod \"p\"): spec.containers[0].envFrom[0]: more than one source (configMapRef, secretRef); give exactly one of configMapRef and secretRef");
    let e = err(&pod_with(
        "    envFrom:\n    - {prefix: 'A=', secretRef: {name: b}}\n",
    ));
    assert!(e.starts_with("document 1 (pod \"p\"): spec.containers[0].envFrom[0].prefix: invalid environment variable name"), "{e}");
    let e = err("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n  - {name: i, image: x, envFrom: [{configMapRef: {}}]}\n  containers:\n  - {name: c, image: x}\n");
    assert_eq!(e, "document 1 (pod \"p\"): spec.initContainers[0].envFrom[0].configMapRef.name: must not be empty");
}

#[test]
fn volume_items_are_relative_paths_to_valid_keys() {
    let volume = |source: &str| pod_with(&format!("  volumes:\n  - name: v\n    {source}\n"));
    let e = err(&volume(
        "configMap: {name: game-demo, items: [{key: game.properties, path: ../../etc/passwd}]}",
    ));
    assert_eq!(e, "document 1 (pod \"p\"): spec.volumes[0].configMap.items[0].path: must not contain '..', got \"../../etc/passwd\"");
    let e = err(&volume(
        "secret: {secretName: s, items: [{key: a, path: x/../../y}]}",
    ));
    assert!(
        e.starts_with(
            "document 1 (pod \"p\"): spec.volumes[0].secret.items[0].path: must not contain '..'"
        ),
        "{e}"
    );
    let e = err(&volume(
        "secret: {secretName: s, items: [{key: a, path: /etc/a}]}",
    ));
    assert_eq!(e, "document 1 (pod \"p\"): spec.volumes[0].secret.items[0].path: must be a relative path inside the volume, got the absolute path \"/etc/a\"");
    let e = err(&volume(
        "secret: {secretName: s, items: [{key: a, path: a}, {key: b, path: a}]}",
    ));
    assert_eq!(
        e,
        "document 1 (pod \"p\"): spec.volumes[0].secret.items[1].path: duplicate path \"a\""
    );
    let e = err(&volume("configMap: {name: c, items: [{key: a}]}"));
    assert_eq!(
        e,
        "document 1 (pod \"p\"): spec.volumes[0].configMap.items[0].path: must not be empty"
    );
    let e = err(&volume(
        "configMap: {name: c, items: [{key: 'a/b', path: a}]}",
    ));
    assert!(
        e.starts_with(
            "document 1 (pod \"p\"): spec.volumes[0].configMap.items[0].key: invalid key \"a/b\""
        ),
        "{e}"
    );
    let e = err(&volume(
        "configMap: {name: c, items: [{key: a, path: a, mode: 01000}]}",
    ));
    assert!(
        e.starts_with(
            "document 1 (pod \"p\"): spec.volumes[0].configMap.items[0].mode: must be a file mode"
        ),
        "{e}"
    );
    let e = err(&volume("secret: {items: [{key: a, path: a}]}"));
    assert_eq!(
        e,
        "document 1 (pod \"p\"): spec.volumes[0].secret.secretName: must not be empty"
    );
    let e = err(&volume("configMap: {name: game..demo}"));
    assert!(e.starts_with("document 1 (pod \"p\"): spec.volumes[0].configMap.name: invalid configmap name \"game..demo\""), "{e}");
    // Dots and subdirectories are fine.
    assert!(parse_manifests(&volume(
        "secret: {secretName: tls.example.com, items: [{key: tls.crt, path: ./certs/tls.crt}]}"
    ))
    .is_ok());
}

#[test]
fn config_map_errors_name_the_document_and_key() {
    let cm = |body: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: game-demo}}\n{body}")
    };
    assert_eq!(
        err(&cm("binaryData: {logo.png: 'not base64!'}\n")),
        "document 1 (configmap \"game-demo\"): binaryData.logo.png: invalid base64 (standard alphabet, padded with '='; for plain text use data)"
    );
    assert_eq!(
        err(&cm("data: {\"bad key\": x}\n")),
        "document 1 (configmap \"game-demo\"): data.bad key: invalid key \"bad key\": must consist of letters, digits, '-', '_' and '.', at most 253 characters"
    );
    assert!(err(&cm("data: {..data: x}\n"))
        .ends_with("invalid key \"..data\": must not be \".\" or start with \"..\""));
    assert_eq!(
        err(&cm("data: {logo: x}\nbinaryData: {logo: eA==}\n")),
        "document 1 (configmap \"game-demo\"): binaryData.logo: duplicate of key \"logo\" in data: a key is in one of them only"
    );
    let big = "x".repeat(1024 * 1024 - 3);
    assert!(parse_manifests(&cm(&format!("data: {{a: '{big}', b: xyz}}\n"))).is_ok());
    assert_eq!(
        err(&cm(&format!("data: {{a: '{big}', b: xyzw}}\n"))),
        "document 1 (configmap \"game-demo\"): data: the values of data and binaryData come to 1048577 bytes, more than the limit of 1048576 (1 MiB)"
    );
    assert!(err(&cm("data: {player_initial_lives: 3}\n")).starts_with(
        "document 1 (configmap \"game-demo\"): data.player_initial_lives: invalid type: a number, expected a string (quote it)"
    ));
    assert!(err(&cm("data: [a, b]\n")).starts_with(
        "document 1 (configmap \"game-demo\"): data: invalid type: a list, expected a mapping of keys to strings"
    ));
    assert!(err("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Game_Demo}\n").ends_with(
        "metadata.name: invalid configmap name \"Game_Demo\": must consist of lowercase letters, digits, '-' and '.', start and end with a letter or digit, at most 253 characters"
    ));
    // Subdomain names: dots, and more than 63 characters.
    let long = format!("{}.example.com", "a".repeat(100));
    assert!(parse_manifests(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {long}}}\n"
    ))
    .is_ok());
}

#[test]
fn secret_errors_name_keys_and_types() {
    let s =
        |body: &str| format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: mysecret}}\n{body}");
    assert_eq!(
        err(&s("data: {password: admin}\n")),
        "document 1 (secret \"mysecret\"): data.password: invalid base64 (standard alphabet, padded with '='; for plain text use stringData)"
    );
    assert_eq!(
        err(&s("stringData: {\"pass word\": x}\n")),
        "document 1 (secret \"mysecret\"): stringData.pass word: invalid key \"pass word\": must consist of letters, digits, '-', '_' and '.', at most 253 characters"
    );
    assert_eq!(
        err(&s("type: kubernetes.io/tls\nstringData: {tls.crt: x}\n")),
        "document 1 (secret \"mysecret\"): data: a secret of type kubernetes.io/tls needs the keys \"tls.crt\" and \"tls.key\""
    );
    assert!(parse_manifests(&s(
        "type: kubernetes.io/tls\nstringData: {tls.crt: x, tls.key: y}\n"
    ))
    .is_ok());
    assert_eq!(
        err(&s("type: kubernetes.io/basic-auth\nstringData: {user: x}\n")),
        "document 1 (secret \"mysecret\"): data: a secret of type kubernetes.io/basic-auth needs the key \"username\" or \"password\""
    );
    assert!(parse_manifests(&s(
        "type: kubernetes.io/basic-auth\nstringData: {password: x}\n"
    ))
    .is_ok());
    assert_eq!(
        err(&s("type: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: '{\"auths\": '}\n")),
        "document 1 (secret \"mysecret\"): data..dockerconfigjson: must be valid JSON for a secret of type kubernetes.io/dockerconfigjson"
    );
    assert!(parse_manifests(&s("type: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: '{\"auths\": {}}'}\n")).is_ok());
    // Any other type is accepted, as in Kubernetes.
    assert!(parse_manifests(&s("type: example.com/custom\n")).is_ok());
    let big = "x".repeat(1024 * 1024);
    assert_eq!(
        err(&s(&format!("stringData: {{a: '{big}', b: x}}\n"))),
        "document 1 (secret \"mysecret\"): data: the values come to 1048577 bytes, more than the limit of 1048576 (1 MiB)"
    );
}

#[test]
fn no_error_about_a_secret_quotes_its_values() {
    const VALUE: &str = "t0p-s3cret";
    let s =
        |body: &str| format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: mysecret}}\n{body}");
    let cases = [
        // Not base64.
        s(&format!("data: {{password: {VALUE}}}\n")),
        s(&format!("data:\n  password: '{VALUE}!'\n")),
        // Not a string.
        s(&format!("stringData: {{password: {{v: {VALUE}}}}}\n")),
        s(&format!("stringData: {{password: [{VALUE}]}}\n")),
        s("stringData: {password: 123456789}\n"),
        s("stringData: {password: true}\n"),
        // Not a mapping.
        s(&format!("data: {VALUE}\n")),
        s(&format!("stringData: {VALUE}\n")),
        s(&format!("stringData: [{VALUE}]\n")),
        // Valid values, other problems.
        s(&format!("type: kubernetes.io/dockerconfigjson\nstringData: {{.dockerconfigjson: '{{\"{VALUE}'}}\n")),
        s(&format!("type: kubernetes.io/tls\nstringData: {{tls.crt: {VALUE}}}\n")),
        s(&format!("stringData: {{password: {VALUE}, bad key: {VALUE}}}\n")),
        s(&format!("stringData: {{password: {VALUE}}}\nlabels: [\n")),
    ];
    for text in cases {
        let e = err(&text);
        for shown in [VALUE, "123456789", "true"] {
            assert!(!e.contains(shown), "{e}\nfor\n{text}");
        }
    }
    // Nor does a warning.
    let (_, warnings) = parse_manifests_with_warnings(&s(&format!(
        "immutable: true\nstringData: {{password: {VALUE}}}\nextra: {VALUE}\n"
    )))
    .unwrap();
    assert_eq!(warnings.len(), 2);
    for w in warnings {
        assert!(!w.to_string().contains(VALUE), "{w}");
    }
}

#[test]
fn fields_of_other_kinds_and_immutable_are_warned_about() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: {a: b}}\nimmutable: true\ndata: {a: b}\nstringData: {x: y}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\ndata: {a: b}\ntype: Opaque\nspec: {containers: [{name: c, image: x}]}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nbinaryData: {a: eA==}\nspec: {restartPolicy: Never}\n";
    assert_eq!(
        warnings(text),
        [
            "document 1 (configmap \"c\"): unknown field \"immutable\" ignored",
            "document 1 (configmap \"c\"): unknown field \"metadata.annotations\" ignored",
            "document 1 (configmap \"c\"): unknown field \"stringData\" ignored",
            "document 2 (pod \"p\"): unknown field \"data\" ignored",
            "document 2 (pod \"p\"): unknown field \"type\" ignored",
            "document 3 (secret \"s\"): unknown field \"spec.restartPolicy\" ignored",
            "document 3 (secret \"s\"): unknown field \"binaryData\" ignored",
        ]
    );
}

#[test]
fn security_context_of_the_pod_applies_to_containers_that_do_not_set_their_own() {
    let text = "apiVersion: v1
kind: Pod
metadata: {name: security-context-demo}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000}
  containers:
  - name: sec-ctx-demo
    image: busybox:1.36
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
  - name: other
    image: busybox:1.36
    securityContext: {runAsUser: 2000, runAsNonRoot: true}
";
    let (objects, warnings) = parse_manifests_with_warnings(text).unwrap();
    let Object::Pod(pod) = &objects[0] else {
        panic!("a pod")
    };
    let first = pod.containers[0].security_context.clone().unwrap();
    assert_eq!(
        (first.run_as_user, first.run_as_group),
        (Some(1000), Some(3000))
    );
    assert_eq!(first.allow_privilege_escalation, Some(false));
    assert!(first.read_only_root_filesystem && !first.privileged);
    assert_eq!(first.capabilities_add, ["NET_ADMIN"]);
    assert_eq!(first.capabilities_drop, ["ALL"]);
    let second = pod.containers[1].security_context.clone().unwrap();
    assert_eq!(
        (second.run_as_user, second.run_as_group),
        (Some(2000), Some(3000))
    );
    assert!(second.run_as_non_root);
    let named: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        named
            .iter()
            .any(|w| w.contains("spec.securityContext.fsGroup")),
        "fsGroup is not applied, and says so: {named:?}"
    );
}

#[test]
fn a_security_context_that_cannot_be_applied_is_refused_with_its_field() {
    let pod = |sc: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    securityContext: {sc}\n"
        )
    };
    for (sc, field) in [
        (
            "{runAsUser: -1}",
            "spec.containers[0].securityContext.runAsUser",
        ),
        (
            "{runAsUser: 0, runAsNonRoot: true}",
            "spec.containers[0].securityContext.runAsNonRoot",
        ),
        (
            "{capabilities: {add: [net_admin]}}",
            "spec.containers[0].securityContext.capabilities.add[0]",
        ),
        (
            "{privileged: true, allowPrivilegeEscalation: false}",
            "spec.containers[0].securityContext.allowPrivilegeEscalation",
        ),
    ] {
        let err = parse_manifests(&pod(sc)).unwrap_err().to_string();
        assert!(err.contains(field), "{sc}: {err}");
    }
    let plain = parse_manifests(&pod("{}")).unwrap();
    let Object::Pod(p) = &plain[0] else { panic!() };
    assert_eq!(
        p.containers[0].security_context, None,
        "an empty one is none"
    );
}
