//! `kube9ctl api-resources` (the kinds kube9d serves, as kubectl lists them) and
//! `kube9ctl completion bash|zsh|fish` (shell completion, generated from the grammar by
//! clap_complete, so it never falls behind the commands).

use crate::cli::{CompletionArgs, Shell};
use clap::CommandFactory;
use serde::Serialize;

use crate::cli::{Cli, Format, Kind};
use crate::commands::Context;
use crate::output::listing::encode;
use crate::output::{emit, table};

/// Every kind kube9d serves, in kubectl's order (alphabetical by name).
const KINDS: [Kind; 6] = [
    Kind::ConfigMap,
    Kind::Event,
    Kind::Namespace,
    Kind::Node,
    Kind::Pod,
    Kind::Secret,
];

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiResource {
    name: &'static str,
    short_names: Vec<&'static str>,
    api_version: &'static str,
    namespaced: bool,
    kind: &'static str,
}

fn resource(kind: Kind) -> ApiResource {
    let (name, short): (&str, &[&str]) = match kind {
        Kind::ConfigMap => ("configmaps", &["cm"]),
        Kind::Event => ("events", &["ev"]),
        Kind::Namespace => ("namespaces", &["ns"]),
        Kind::Node => ("nodes", &["no"]),
        Kind::Pod => ("pods", &["po"]),
        Kind::Secret => ("secrets", &[]),
    };
    ApiResource {
        name,
        short_names: short.to_vec(),
        api_version: "v1",
        namespaced: kind.is_namespaced(),
        kind: kind.wire(),
    }
}

/// The `api-resources` table (or JSON/YAML list, or `-o name`).
pub fn api_resources(ctx: &Context) -> anyhow::Result<()> {
    let resources: Vec<ApiResource> = KINDS.into_iter().map(resource).collect();
    let text = match ctx.format() {
        format @ (Format::Json | Format::Yaml) => encode(&resources, format)?,
        Format::Name => resources.iter().map(|r| format!("{}\n", r.name)).collect(),
        _ => {
            let rows = resources
                .iter()
                .map(|r| {
                    vec![
                        r.name.to_string(),
                        r.short_names.join(","),
                        r.api_version.to_string(),
                        r.namespaced.to_string(),
                        r.kind.to_string(),
                    ]
                })
                .collect();
            table::render(
                &["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
                rows,
            )
        }
    };
    emit(&text)
}

/// Prints the completion script for `shell`.
pub fn completion(args: CompletionArgs) -> anyhow::Result<()> {
    use clap_complete::{generate, shells};
    let mut command = Cli::command();
    let mut out = Vec::new();
    match args.shell {
        Shell::Bash => generate(shells::Bash, &mut command, "kube9ctl", &mut out),
        Shell::Zsh => generate(shells::Zsh, &mut command, "kube9ctl", &mut out),
        Shell::Fish => generate(shells::Fish, &mut command, "kube9ctl", &mut out),
    }
    crate::output::emit_bytes(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_with_its_short_names() {
        let text = table::render(
            &["NAME", "SHORTNAMES"],
            KINDS
                .into_iter()
                .map(resource)
                .map(|r| vec![r.name.into(), r.short_names.join(",")])
                .collect(),
        );
        assert!(text.contains("pods         po"), "{text}");
        assert!(!resource(Kind::Node).namespaced);
        assert!(resource(Kind::Pod).namespaced);
    }
}
