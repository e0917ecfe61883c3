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
            value: "prod".into()
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
        "document 1: unknown kind \"Deployment\" (supported: Pod, Node)"
    );
    assert_eq!(
        err("apiVersion: v1\nmetadata: {name: web}\n"),
        "document 1: missing field \"kind\" (supported: Pod, Node)"
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
        "document 1: unknown kind \"Service\" (supported: Pod, Node)"
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
    assert!(err("{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c, image: x, env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]}}")
        .contains("spec.containers[0].env[0].valueFrom: not supported"));
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
        [
            "document 1 (pod \"web\"): unknown field \"spec.containers[0].terminationMessagePath\" ignored",
            "document 1 (pod \"web\"): field \"metadata.namespace\" ignored: Kube-9 has no namespaces, \"prod\" is treated as \"default\"",
        ]
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
    let clean = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default, labels: {a: b}}\nspec: {restartPolicy: Never, containers: [{name: c, image: x, resources: {requests: {cpu: 1}}}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n}\nspec: {capacity: {cpu: 4}}\n";
    assert!(warnings(clean).is_empty(), "{:?}", warnings(clean));
    let read_back = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, uid: u-1, creationTimestamp: '2024-03-01T12:00:00Z', resourceVersion: '7'}\nspec: {containers: [{name: c, image: x}]}\nstatus: {phase: Running, containerStatuses: [{name: c}]}\n";
    assert!(warnings(read_back).is_empty(), "{:?}", warnings(read_back));
}

#[test]
fn fields_of_the_other_kind_are_reported_as_ignored() {
    let text = "{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {capacity: {cpu: 1}, containers: [{name: c, image: x}]}}\n---\n{apiVersion: v1, kind: Node, metadata: {name: n}, spec: {capacity: {cpu: 1}, restartPolicy: Never}}\n";
    assert_eq!(
        warnings(text),
        [
            "document 1 (pod \"p\"): unknown field \"spec.capacity\" ignored",
            "document 2 (node \"n\"): unknown field \"spec.restartPolicy\" ignored",
        ]
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
