//! `kube9ctl apply -f FILE|DIR|- [--dry-run]`: validate locally, then one `Apply` RPC.

use crate::cli::{ApplyArgs, Format};
use crate::commands::Context;
use crate::output::emit;
use anyhow::Context as _;
use kube9_proto::manifest::{apply_request, parse_manifests_with_warnings, Object};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

pub async fn run(ctx: &Context, args: ApplyArgs) -> anyhow::Result<()> {
    let Manifests { objects, warnings } = read_manifests(&args.files)?;
    // Like kubectl's warn mode: accepted, but the user learns what will be ignored.
    for warning in &warnings {
        eprintln!("Warning: {warning}");
    }
    if objects.is_empty() {
        anyhow::bail!("no objects passed to apply");
    }
    let mut cluster = ctx.connect().await?;
    let response = cluster
        .client
        .apply(apply_request(objects, args.dry_run))
        .await;
    let response = cluster.check(response)?;
    let mut out = String::new();
    for result in &response.results {
        out.push_str(&result_line(result, ctx.format(), args.dry_run));
        out.push('\n');
    }
    emit(&out)
}

/// `pod/web created`, `node/n4 unchanged`, `pod/web created (dry run)`; `pod/web` with `-o name`.
pub fn result_line(result: &kube9_proto::pb::ApplyResult, format: Format, dry_run: bool) -> String {
    let object = format!("{}/{}", result.kind.to_ascii_lowercase(), result.name);
    match (format, dry_run) {
        (Format::Name, _) => object,
        (_, false) => format!("{object} {}", result.action),
        (_, true) => format!("{object} {} (dry run)", result.action),
    }
}

/// The objects of one or more manifests, and what they hold that will be ignored.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Every object, validated, in file and document order.
    pub objects: Vec<Object>,
    /// One line per ignored field: `pod.yaml: document 1 (pod "web"): unknown field
    /// "spec.containers[0].terminationMessagePath" ignored`.
    pub warnings: Vec<String>,
}

/// Reads and validates every object of every file (`-` is stdin, a directory means its
/// `.yaml`, `.yml` and `.json` files), refusing an object defined in two files.
pub fn read_manifests(paths: &[String]) -> anyhow::Result<Manifests> {
    let mut objects = Vec::new();
    let mut warnings = Vec::new();
    let mut seen: HashMap<(&'static str, String), String> = HashMap::new();
    for (source, text) in read_sources(paths)? {
        let (parsed, ignored) =
            parse_manifests_with_warnings(&text).with_context(|| source.clone())?;
        warnings.extend(ignored.iter().map(|w| format!("{source}: {w}")));
        for object in parsed {
            let key = (object.kind(), object.name().to_string());
            if let Some(first) = seen.get(&key) {
                anyhow::bail!(
                    "{source}: {} {:?} is also defined in {first}",
                    object.kind().to_ascii_lowercase(),
                    object.name()
                );
            }
            seen.insert(key, source.clone());
            objects.push(object);
        }
    }
    Ok(Manifests { objects, warnings })
}

/// `(name, text)` of each input.
fn read_sources(paths: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut sources = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the manifest from stdin")?;
            sources.push(("<stdin>".to_string(), text));
        } else if Path::new(path).is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read directory {path}"))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                })
                .collect();
            files.sort();
            for file in files {
                let name = file.display().to_string();
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {name}"))?;
                sources.push((name, text));
            }
        } else {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
            sources.push((path.clone(), text));
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube9_proto::pb::ApplyResult;

    fn result(kind: &str, name: &str, action: &str) -> ApplyResult {
        ApplyResult {
            kind: kind.into(),
            name: name.into(),
            action: action.into(),
        }
    }

    #[test]
    fn results_print_kind_slash_name_and_action() {
        assert_eq!(
            result_line(&result("Pod", "web", "created"), Format::Table, false),
            "pod/web created"
        );
        assert_eq!(
            result_line(&result("Node", "n4", "unchanged"), Format::Table, false),
            "node/n4 unchanged"
        );
        assert_eq!(
            result_line(&result("Pod", "web", "created"), Format::Name, false),
            "pod/web"
        );
        assert_eq!(
            result_line(&result("Pod", "web", "created"), Format::Table, true),
            "pod/web created (dry run)"
        );
    }

    #[test]
    fn the_examples_parse_and_the_bad_ones_do_not() {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
        for good in ["pod.yaml", "pods.yaml", "nodes.yaml"] {
            let manifests = read_manifests(&[format!("{examples}/{good}")]).unwrap();
            assert!(!manifests.objects.is_empty(), "{good}");
            assert_eq!(manifests.warnings, Vec::<String>::new(), "{good}");
        }
        let bad = format!("{examples}/bad");
        let mut files: Vec<_> = std::fs::read_dir(&bad)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 4);
        for file in files {
            let err = read_manifests(&[file.display().to_string()]).unwrap_err();
            let text = format!("{err:#}");
            assert!(text.starts_with(&file.display().to_string()), "{text}");
        }
    }

    #[test]
    fn ignored_fields_become_warnings_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("kube9ctl-apply-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("web.yaml");
        std::fs::write(
            &file,
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\nspec:\n  containers:\n  - name: c\n    image: x\n    terminationMessagePath: /dev/log\n",
        )
        .unwrap();
        let path = file.display().to_string();
        let manifests = read_manifests(std::slice::from_ref(&path)).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(manifests.objects.len(), 1);
        assert_eq!(
            manifests.warnings,
            [format!(
                "{path}: document 1 (pod \"web\"): unknown field \"spec.containers[0].terminationMessagePath\" ignored"
            )]
        );
    }

    #[test]
    fn an_object_in_two_files_is_refused() {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
        let pod = format!("{examples}/pod.yaml");
        let err = read_manifests(&[pod.clone(), pod]).unwrap_err();
        assert!(err.to_string().contains("is also defined in"), "{err}");
    }
}
