//! Property tests: whatever text a person or a script hands kube9ctl and kube9d, the manifest
//! reader, validation, quantities, selectors and the base64 codec answer with a value or an
//! error, never a panic. Bounded (the case counts below, a few seconds in all); proptest
//! shrinks a failure to a minimal input, which then belongs in a regression test here.

use kube9_proto::manifest::parse_manifests_with_warnings;
use kube9_proto::{base64, quantity, selector};
use proptest::prelude::*;

/// A manifest touching most of what the reader knows: every kind, volumes, probes, env
/// sources, security context, resources.
const SEED: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: game, namespace: shop}
data: {lives: "3"}
binaryData: {blob: aGVsbG8=}
---
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
type: Opaque
data: {password: aHVudGVyMg==}
stringData: {user: admin}
---
apiVersion: v1
kind: Node
metadata: {name: big, labels: {zone: a}}
spec: {capacity: {cpu: "8", memory: 16Gi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: {app: web}
  annotations: {kubectl.kubernetes.io/default-container: httpd}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 5
  securityContext: {runAsUser: 1000, runAsNonRoot: true}
  initContainers:
  - name: init
    image: busybox
    command: [sh, -c, "true"]
  containers:
  - name: httpd
    image: kube9/busybox:1
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "exec httpd -f -p 8080"]
    args: ["-v"]
    env:
    - {name: A, value: "1"}
    - name: B
      valueFrom: {secretKeyRef: {name: db, key: password, optional: true}}
    - name: C
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    envFrom:
    - {prefix: G_, configMapRef: {name: game}}
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 2
    livenessProbe:
      exec: {command: [true]}
      failureThreshold: 3
    securityContext:
      readOnlyRootFilesystem: true
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
      allowPrivilegeEscalation: false
    resources:
      requests: {cpu: 500m, memory: 64Mi}
      limits: {cpu: "1", memory: 128Mi}
    volumeMounts:
    - {name: cache, mountPath: /cache}
    - {name: conf, mountPath: /conf, readOnly: true, subPath: x}
  volumes:
  - name: cache
    emptyDir: {medium: Memory, sizeLimit: 10Mi}
  - name: conf
    configMap: {name: game, items: [{key: lives, path: lives}], defaultMode: 420}
  - name: host
    hostPath: {path: /tmp, type: Directory}
"#;

/// Values that have broken parsers elsewhere: signs, overflow, exponents, odd units,
/// non-ASCII, YAML's own specials.
const NASTY: &[&str] = &[
    "", "-1", "0", "-0", "1e309", "9223372036854775807", "-9223372036854775808",
    "99999999999999999999999", "1.5", ".5", "5.", "1e3", "1E-3", "0x10", "NaN", "inf", "-.inf",
    "500m", "-500m", "1Ei", "8Ei", "9Ei", "1Pi", "0.0000001", "1m", "1u", "1n", "Mi", "m",
    "1Gi1", "null", "~", "true", "[]", "{}", "[1, [2, [3]]]", "{a: {b: {c: d}}}", "\"\"",
    "'", "\"", ":", "- -", "&a *a", "!!binary aGk=", "é", "名前", "a/b", "../..", "/",
    "a\u{0}b", "   ", "\t", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "ALL", "Always", "Never", "Memory",
];

/// The byte offsets of the seed's scalar values (after `: ` or `- `, or inside `[...]`).
fn value_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts = i >= 2 && (&bytes[i - 2..i] == b": " || &bytes[i - 2..i] == b"- ");
        if starts && !matches!(bytes[i], b'{' | b'[' | b'\n') {
            let end = (i..bytes.len())
                .find(|&j| matches!(bytes[j], b'\n' | b',' | b'}' | b']'))
                .unwrap_or(bytes.len());
            if end > i {
                spans.push((i, end));
            }
            i = end;
        } else {
            i += 1;
        }
    }
    spans
}

/// The seed with the values at `picks` (indexes into its value spans, modulo their count)
/// replaced by `values`.
fn mutate(picks: &[(usize, usize)]) -> String {
    let spans = value_spans(SEED);
    let mut chosen: Vec<((usize, usize), &str)> = picks
        .iter()
        .map(|(s, v)| (spans[s % spans.len()], NASTY[v % NASTY.len()]))
        .collect();
    chosen.sort_by_key(|((start, _), _)| std::cmp::Reverse(*start));
    chosen.dedup_by_key(|((start, _), _)| *start);
    let mut text = SEED.to_string();
    for ((start, end), value) in chosen {
        text.replace_range(start..end, value);
    }
    text
}

/// Reads, then validates whatever was read, as kube9ctl and kube9d do.
fn read_and_validate(text: &str) {
    if let Ok((objects, _warnings)) = parse_manifests_with_warnings(text) {
        for o in &objects {
            let _ = o.validate();
        }
    }
}

#[test]
fn the_seed_manifest_reads_and_validates() {
    let (objects, _) = parse_manifests_with_warnings(SEED).expect("the seed reads");
    assert_eq!(objects.len(), 5);
    for o in &objects {
        o.validate().unwrap_or_else(|e| panic!("{}: {e}", o.name()));
    }
    assert!(
        value_spans(SEED).len() > 60,
        "the mutations reach most fields"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// 3,000 manifests: the seed with 1 to 6 values replaced by nasty ones.
    #[test]
    fn mutated_manifests_never_panic(picks in prop::collection::vec((any::<usize>(), any::<usize>()), 1..6)) {
        read_and_validate(&mutate(&picks));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// 2,000 arbitrary texts, and 2,000 arbitrary cuts of the seed.
    #[test]
    fn any_text_never_panics(text in ".{0,400}") {
        read_and_validate(&text);
    }

    #[test]
    fn any_cut_of_the_seed_never_panics(cut in 0usize..SEED.len()) {
        if SEED.is_char_boundary(cut) {
            read_and_validate(&SEED[..cut]);
        }
    }

    #[test]
    fn quantities_selectors_and_base64_never_panic(s in ".{0,64}") {
        let _ = quantity::parse_cpu(&s);
        let _ = quantity::parse_memory(&s);
        let _ = selector::parse(&s);
        let _ = base64::decode(&s);
    }

    #[test]
    fn quantities_with_numbers_never_panic(n in any::<f64>(), unit in "(|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e[0-9]{1,3})") {
        let s = format!("{n}{unit}");
        let _ = quantity::parse_cpu(&s);
        let _ = quantity::parse_memory(&s);
    }
}
