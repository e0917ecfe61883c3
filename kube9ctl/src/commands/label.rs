//! `kube9ctl label KIND/NAME k=v k2-` and `kube9ctl annotate KIND/NAME k=v k-`: one
//! `SetMetadata` call. kube9d checks keys and values as Kubernetes does and refuses to change
//! an existing value without `--overwrite`; a refusal changes nothing.

use crate::cli::MetadataArgs;
use std::collections::HashMap;

use kube9_proto::pb;

use crate::commands::Context;
use crate::output::emit;

/// What a command line asks: kind, name, keys to set, keys to remove.
#[derive(Debug, PartialEq, Eq)]
pub struct Changes {
    pub kind: String,
    pub name: String,
    pub set: HashMap<String, String>,
    pub remove: Vec<String>,
}

/// Parses `KIND/NAME changes...` or `KIND NAME changes...`.
pub fn parse(args: &[String], what: &str) -> anyhow::Result<Changes> {
    let (kind, name, rest) = match args.first().and_then(|a| a.split_once('/')) {
        Some((kind, name)) => (kind.to_string(), name.to_string(), &args[1..]),
        None if args.len() >= 2 && !args[1].contains('=') && !args[1].ends_with('-') => {
            (args[0].clone(), args[1].clone(), &args[2..])
        }
        None => anyhow::bail!("you must specify the object to {what}: KIND/NAME or KIND NAME"),
    };
    if kind.is_empty() || name.is_empty() {
        anyhow::bail!("invalid object {kind}/{name}: expected KIND/NAME");
    }
    let mut set = HashMap::new();
    let mut remove = Vec::new();
    for change in rest {
        if let Some((key, value)) = change.split_once('=') {
            set.insert(key.to_string(), value.to_string());
        } else if let Some(key) = change.strip_suffix('-') {
            remove.push(key.to_string());
        } else {
            anyhow::bail!("invalid {what} spec {change:?}: expected KEY=VALUE or KEY-");
        }
    }
    if set.is_empty() && remove.is_empty() {
        anyhow::bail!("at least one {what} update is required (KEY=VALUE or KEY-)");
    }
    Ok(Changes {
        kind,
        name,
        set,
        remove,
    })
}

/// `label` (`annotations` false) or `annotate` (true).
pub async fn run(ctx: &Context, args: MetadataArgs, annotations: bool) -> anyhow::Result<()> {
    let what = if annotations { "annotation" } else { "label" };
    let changes = parse(&args.args, what)?;
    let kind = kind_name(&changes.kind);
    let namespaced = matches!(kind.as_str(), "pod" | "configmap" | "secret");
    let request = pb::SetMetadataRequest {
        kind: changes.kind.clone(),
        namespace: if namespaced {
            ctx.namespace.name.clone()
        } else {
            String::new()
        },
        name: changes.name.clone(),
        annotations,
        set: changes.set,
        remove: changes.remove,
        overwrite: args.overwrite,
    };
    let mut cluster = ctx.connect().await?;
    let response = cluster.client.set_metadata(request).await;
    let response = cluster.check(response)?;
    let verb = match (annotations, response.changed) {
        (false, true) => "labeled",
        (false, false) => "not labeled",
        (true, true) => "annotated",
        (true, false) => "not annotated",
    };
    emit(&format!("{kind}/{} {verb}\n", changes.name))
}

/// The singular kind kubectl prints for `pods`, `po`, `cm`, ...
fn kind_name(kind: &str) -> String {
    match kind.to_ascii_lowercase().as_str() {
        "pods" | "po" => "pod".into(),
        "nodes" | "no" => "node".into(),
        "namespaces" | "ns" => "namespace".into(),
        "configmaps" | "cm" => "configmap".into(),
        "secrets" => "secret".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kind_slash_name_or_kind_name_then_changes() {
        let c = parse(&args(&["pod/web", "app=x", "tier-"]), "label").unwrap();
        assert_eq!((c.kind.as_str(), c.name.as_str()), ("pod", "web"));
        assert_eq!(c.set["app"], "x");
        assert_eq!(c.remove, vec!["tier"]);
        let c = parse(&args(&["node", "n1", "zone="]), "label").unwrap();
        assert_eq!((c.kind.as_str(), c.name.as_str()), ("node", "n1"));
        assert_eq!(c.set["zone"], "");
        assert!(parse(&args(&["pod/web"]), "label").is_err());
        assert!(parse(&args(&["pod/web", "justakey"]), "label").is_err());
        assert!(parse(&args(&["app=x"]), "label").is_err());
    }
}
