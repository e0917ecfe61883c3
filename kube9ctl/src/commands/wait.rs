//! `kube9ctl wait --for=condition=Ready|delete|jsonpath='{.status.phase}'=Running
//! KIND/NAME... | KIND [NAME...] [-l SELECTOR] [--timeout=30s]`, and `apply --wait`.
//!
//! Driven by a watch ([`Watcher`]), not by polling: the objects are listed once, each is
//! checked, and every change to one still waited on is checked again as it arrives. Each
//! object that meets the condition prints `pod/NAME condition met`; at the timeout each one
//! that did not prints `error: timed out waiting for the condition on pods/NAME` and kube9ctl
//! exits 1. `--for=delete` on an object that is already gone succeeds at once.

use crate::cli::{Condition, WaitArgs};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use kube9_proto::selector::{self, Selector};
use serde_json::Value;
use tokio::time::Instant;

use crate::cli::{parse_selection, Kind, Selection};
use crate::client::Client;
use crate::commands::watch::{ChangeType, Scope, Seen, Watcher};
use crate::commands::Context;
use crate::error::{Reported, ServerError};
use crate::output::jsonpath::text;
use crate::output::listing::Objects;

/// Where an object stands against what is waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Met,
    /// Not yet, and why (for the progress line).
    Waiting(String),
    /// Never will be (a pod that failed, for `apply --wait`).
    Failed(String),
}

impl Condition {
    /// Checks one object (`None`: it does not exist).
    pub fn check(&self, kind: Kind, object: Option<&Value>) -> Verdict {
        let Some(object) = object else {
            return match self {
                Condition::Delete => Verdict::Met,
                _ => Verdict::Waiting("not found".into()),
            };
        };
        let met = match self {
            Condition::Delete => false,
            Condition::Condition { name, value } => {
                condition_status(kind, object, name).is_some_and(|s| s.eq_ignore_ascii_case(value))
            }
            Condition::JsonPath { path, value } => match path.results(object) {
                Ok(results) => match value {
                    None => !results.is_empty(),
                    Some(value) => results.iter().any(|r| text(r) == *value),
                },
                Err(_) => false,
            },
        };
        if met {
            Verdict::Met
        } else {
            Verdict::Waiting(String::new())
        }
    }
}

/// `status.conditions[type=name].status`; nodes have no conditions list, so their Ready is
/// whether they are Healthy.
fn condition_status(kind: Kind, object: &Value, name: &str) -> Option<String> {
    if let Some(conditions) = object["status"]["conditions"].as_array() {
        return conditions
            .iter()
            .find(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(name))
            })
            .and_then(|c| c["status"].as_str().map(str::to_string));
    }
    if kind == Kind::Node && name.eq_ignore_ascii_case("ready") {
        let healthy = object["status"]["phase"] == "Healthy";
        return Some(if healthy { "True" } else { "False" }.to_string());
    }
    None
}

/// An object waited on: `pods/web` in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: Kind,
    /// Empty for cluster-wide kinds.
    pub namespace: String,
    pub name: String,
}

impl Ord for Target {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |t: &Target| (t.kind.noun(), t.namespace.clone(), t.name.clone());
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Target {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Target {
    fn of(kind: Kind, namespace: &str, name: &str) -> Target {
        Target {
            kind,
            namespace: if kind.is_namespaced() {
                kube9_proto::namespace::or_default(namespace).to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    /// `pod/web`.
    pub fn object(&self) -> String {
        format!("{}/{}", self.kind.noun(), self.name)
    }

    /// `pods/web`, as kubectl's timeout message says it.
    pub fn plural(&self) -> String {
        format!("{}s/{}", self.kind.noun(), self.name)
    }
}

/// Each object's target and document.
fn documents(objects: &Objects) -> anyhow::Result<Vec<(Target, Value)>> {
    let kind = objects.kind();
    let values = objects.values()?;
    Ok(values
        .into_iter()
        .map(|v| {
            let name = v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let ns = v["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (Target::of(kind, &ns, &name), v)
        })
        .collect())
}

/// Reports what happens to the objects waited on.
pub trait Progress {
    /// `target` met the condition.
    fn met(&mut self, target: &Target);
    /// Where every object not done yet stands (called after each change).
    fn waiting(&mut self, _pending: &BTreeMap<Target, String>, _done: usize) {}
    /// Before returning.
    fn finish(&mut self) {}
}

/// `pod/web condition met`.
struct Plain;

impl Progress for Plain {
    fn met(&mut self, target: &Target) {
        let _ = crate::output::emit(&format!("{} condition met\n", target.object()));
    }
}

/// How a wait ended: the targets that failed (and why), and those still waiting at the
/// deadline.
#[derive(Debug, Default)]
pub struct Outcome {
    pub failed: Vec<(Target, String)>,
    pub timed_out: Vec<Target>,
}

/// Waits until every target meets `check` (or fails, or the deadline passes), watching from
/// the list `objects` was taken with.
pub async fn wait_for(
    cluster: &mut Client,
    mut watcher: Watcher,
    objects: Objects,
    targets: Vec<Target>,
    check: &dyn Fn(Kind, Option<&Value>) -> Verdict,
    deadline: Option<Instant>,
    progress: &mut dyn Progress,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut pending: BTreeMap<Target, String> =
        targets.into_iter().map(|t| (t, String::new())).collect();
    let total = pending.len();
    let mut docs: BTreeMap<Target, Value> = documents(&objects)?.into_iter().collect();
    let settle = |pending: &mut BTreeMap<Target, String>,
                  docs: &BTreeMap<Target, Value>,
                  outcome: &mut Outcome,
                  progress: &mut dyn Progress| {
        let mut done = Vec::new();
        for (target, why) in pending.iter_mut() {
            match check(target.kind, docs.get(target)) {
                Verdict::Met => {
                    progress.met(target);
                    done.push(target.clone());
                }
                Verdict::Failed(reason) => {
                    outcome.failed.push((target.clone(), reason));
                    done.push(target.clone());
                }
                Verdict::Waiting(reason) => *why = reason,
            }
        }
        for target in done {
            pending.remove(&target);
        }
        progress.waiting(pending, total - pending.len());
    };
    settle(&mut pending, &docs, &mut outcome, progress);
    while !pending.is_empty() {
        let seen = match deadline {
            Some(deadline) => {
                match tokio::time::timeout_at(deadline, watcher.next(cluster)).await {
                    Ok(seen) => seen?,
                    Err(_) => break,
                }
            }
            None => watcher.next(cluster).await?,
        };
        match seen {
            Seen::Change(change, objects) => {
                for (target, doc) in documents(&objects)? {
                    if change == ChangeType::Deleted {
                        docs.remove(&target);
                    } else {
                        docs.insert(target, doc);
                    }
                }
            }
            Seen::Relisted(objects) => docs = documents(&objects)?.into_iter().collect(),
        }
        settle(&mut pending, &docs, &mut outcome, progress);
    }
    outcome.timed_out = pending.into_keys().collect();
    progress.finish();
    Ok(outcome)
}

pub async fn run(ctx: &Context, args: WaitArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + args.timeout;
    let selection = parse_selection(&args.resources).map_err(anyhow::Error::msg)?;
    let (kind, names) = match selection {
        Selection::Kinds {
            kinds,
            names,
            several: false,
        } if kinds.len() == 1 => (kinds[0], names),
        Selection::Objects(objects) => {
            let kind = objects[0].0;
            if objects.iter().any(|(k, _)| *k != kind) {
                anyhow::bail!("wait on one kind at a time");
            }
            (kind, objects.into_iter().map(|(_, n)| n).collect())
        }
        _ => anyhow::bail!("you may only specify a single resource type"),
    };
    if !matches!(kind, Kind::Pod | Kind::Node) {
        anyhow::bail!("wait works on pods and nodes");
    }
    if !names.is_empty() && args.selector.is_some() {
        anyhow::bail!("a name cannot be given together with a label selector (-l)");
    }
    if names.is_empty() && args.selector.is_none() {
        anyhow::bail!("give the objects to wait on: KIND/NAME..., or KIND with -l SELECTOR");
    }
    let selector = match &args.selector {
        Some(s) => selector::parse(s).map_err(|e| anyhow::anyhow!("-l/--selector: {e}"))?,
        None => Selector::everything(),
    };
    let namespace = if !kind.is_namespaced() || args.all_namespaces {
        String::new()
    } else {
        ctx.ns().to_string()
    };
    let scope = Scope {
        kind,
        namespace: namespace.clone(),
        name: None,
        selector,
        fields: Default::default(),
        node: String::new(),
    };
    let mut cluster = ctx.connect().await?;
    let (objects, watcher) = Watcher::list(&mut cluster, scope).await?;
    let listed = documents(&objects)?;
    let targets: Vec<Target> = if names.is_empty() {
        listed.iter().map(|(t, _)| t.clone()).collect()
    } else {
        names
            .iter()
            .map(|n| Target::of(kind, &namespace, n))
            .collect()
    };
    if targets.is_empty() {
        anyhow::bail!("no matching resources found");
    }
    let mut missing = 0;
    if !matches!(args.condition, Condition::Delete) {
        // kubectl's: an object that does not exist cannot meet a condition.
        for target in &targets {
            if !listed.iter().any(|(t, _)| t == target) {
                crate::error::report(&ServerError::not_found(kind.noun(), &target.name).into());
                missing += 1;
            }
        }
        if missing > 0 {
            return Err(Reported.into());
        }
    }
    let condition = args.condition.clone();
    let check = move |kind: Kind, doc: Option<&Value>| condition.check(kind, doc);
    let outcome = wait_for(
        &mut cluster,
        watcher,
        objects,
        targets,
        &check,
        Some(deadline),
        &mut Plain,
    )
    .await?;
    for target in &outcome.timed_out {
        eprintln!(
            "error: timed out waiting for the condition on {}",
            target.plural()
        );
    }
    if !outcome.timed_out.is_empty() {
        return Err(Reported.into());
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// apply --wait
// ------------------------------------------------------------------------------------------

/// A pod applied with `--wait` is done when it is Ready (running, readiness passing) or ran to
/// completion; one that failed will not get there.
pub fn pod_started(_: Kind, doc: Option<&Value>) -> Verdict {
    let Some(doc) = doc else {
        return Verdict::Failed("it was deleted".into());
    };
    let status = &doc["status"];
    let phase = status["phase"].as_str().unwrap_or_default();
    let ready = condition_status(Kind::Pod, doc, "Ready").is_some_and(|s| s == "True");
    match phase {
        "Running" if ready => Verdict::Met,
        "Succeeded" => Verdict::Met,
        "Failed" => {
            let reason = status["reason"].as_str().unwrap_or_default();
            Verdict::Failed(if reason.is_empty() {
                "it failed".to_string()
            } else {
                format!("it failed: {reason}")
            })
        }
        _ => {
            // What `get pods` shows in STATUS says the most.
            let reason = (status["containerStatuses"].as_array())
                .into_iter()
                .flatten()
                .find_map(|c| c["state"]["waiting"]["reason"].as_str().map(str::to_string))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| {
                    if phase.is_empty() {
                        "Pending".into()
                    } else {
                        phase.into()
                    }
                });
            Verdict::Waiting(reason)
        }
    }
}

/// `apply --wait`'s report: `pod/web ready` lines, and on a terminal one status line that is
/// rewritten in place.
struct ApplyProgress {
    terminal: bool,
    /// The status line is on screen.
    shown: bool,
}

impl ApplyProgress {
    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            self.shown = false;
        }
    }
}

impl Progress for ApplyProgress {
    fn met(&mut self, target: &Target) {
        self.clear();
        let _ = crate::output::emit(&format!("{} ready\n", target.object()));
    }

    fn waiting(&mut self, pending: &BTreeMap<Target, String>, done: usize) {
        if !self.terminal || pending.is_empty() {
            return;
        }
        let total = done + pending.len();
        let mut line = format!("waiting for pods: {done}/{total} ready");
        let parts: Vec<String> = pending
            .iter()
            .take(3)
            .map(|(t, why)| format!("{} {why}", t.name).trim_end().to_string())
            .collect();
        line.push_str(&format!(" ({}", parts.join(", ")));
        if pending.len() > 3 {
            line.push_str(", ...");
        }
        line.push(')');
        self.clear();
        eprint!("{line}");
        self.shown = true;
    }

    fn finish(&mut self) {
        self.clear();
    }
}

/// Waits until the applied pods are Ready (or completed); `timeout` zero waits without limit.
pub async fn applied_pods(
    cluster: &mut Client,
    pods: Vec<(String, String)>,
    timeout: Duration,
) -> anyhow::Result<()> {
    if pods.is_empty() {
        return Ok(());
    }
    let deadline = (!timeout.is_zero()).then(|| Instant::now() + timeout);
    let first = &pods[0].0;
    let namespace = if pods.iter().all(|(ns, _)| ns == first) {
        kube9_proto::namespace::or_default(first).to_string()
    } else {
        String::new()
    };
    let scope = Scope {
        kind: Kind::Pod,
        namespace,
        name: None,
        selector: Selector::everything(),
        fields: Default::default(),
        node: String::new(),
    };
    let (objects, watcher) = Watcher::list(cluster, scope).await?;
    let targets = (pods.iter())
        .map(|(ns, name)| Target::of(Kind::Pod, ns, name))
        .collect();
    let mut progress = ApplyProgress {
        terminal: std::io::stderr().is_terminal(),
        shown: false,
    };
    let outcome = wait_for(
        cluster,
        watcher,
        objects,
        targets,
        &pod_started,
        deadline,
        &mut progress,
    )
    .await?;
    for (target, why) in &outcome.failed {
        eprintln!("error: {} will not become ready: {why}", target.object());
    }
    for target in &outcome.timed_out {
        eprintln!(
            "error: timed out waiting for {} to become ready",
            target.object()
        );
    }
    if outcome.failed.is_empty() && outcome.timed_out.is_empty() {
        Ok(())
    } else {
        Err(Reported.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_condition;
    use serde_json::json;

    fn pod(phase: &str, ready: bool) -> Value {
        json!({"kind": "Pod", "metadata": {"name": "web"}, "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}})
    }

    #[test]
    fn conditions_parse_as_kubectl_writes_them() {
        let ready = parse_condition("condition=Ready").unwrap();
        assert!(
            matches!(&ready, Condition::Condition { name, value } if name == "Ready" && value == "True")
        );
        assert_eq!(
            ready.check(Kind::Pod, Some(&pod("Running", true))),
            Verdict::Met
        );
        assert_ne!(
            ready.check(Kind::Pod, Some(&pod("Running", false))),
            Verdict::Met
        );
        let not_ready = parse_condition("condition=ready=false").unwrap();
        assert_eq!(
            not_ready.check(Kind::Pod, Some(&pod("Running", false))),
            Verdict::Met
        );
        let phase = parse_condition("jsonpath={.status.phase}=Running").unwrap();
        assert_eq!(
            phase.check(Kind::Pod, Some(&pod("Running", false))),
            Verdict::Met
        );
        assert_ne!(
            phase.check(Kind::Pod, Some(&pod("Pending", false))),
            Verdict::Met
        );
        let relaxed = parse_condition("jsonpath=.status.phase=Pending").unwrap();
        assert_eq!(
            relaxed.check(Kind::Pod, Some(&pod("Pending", false))),
            Verdict::Met
        );
        let exists = parse_condition("jsonpath={.status.phase}").unwrap();
        assert_eq!(
            exists.check(Kind::Pod, Some(&pod("Pending", false))),
            Verdict::Met
        );
        let delete = parse_condition("delete").unwrap();
        assert_eq!(delete.check(Kind::Pod, None), Verdict::Met);
        assert_ne!(
            delete.check(Kind::Pod, Some(&pod("Running", true))),
            Verdict::Met
        );
        assert_ne!(ready.check(Kind::Pod, None), Verdict::Met);
        assert!(parse_condition("ready").is_err());
        assert!(parse_condition("jsonpath={.status.phase").is_err());
    }

    #[test]
    fn nodes_are_ready_when_healthy() {
        let ready = parse_condition("condition=Ready").unwrap();
        let node = |phase: &str| json!({"kind": "Node", "status": {"phase": phase}});
        assert_eq!(
            ready.check(Kind::Node, Some(&node("Healthy"))),
            Verdict::Met
        );
        assert_ne!(ready.check(Kind::Node, Some(&node("Failed"))), Verdict::Met);
    }

    #[test]
    fn applied_pods_are_done_when_ready_or_completed() {
        assert_eq!(
            pod_started(Kind::Pod, Some(&pod("Running", true))),
            Verdict::Met
        );
        assert_eq!(
            pod_started(Kind::Pod, Some(&pod("Succeeded", false))),
            Verdict::Met
        );
        assert_eq!(
            pod_started(Kind::Pod, Some(&pod("Scheduled", false))),
            Verdict::Waiting("ContainerCreating".into())
        );
        assert!(matches!(
            pod_started(Kind::Pod, Some(&pod("Failed", false))),
            Verdict::Failed(_)
        ));
        assert!(matches!(pod_started(Kind::Pod, None), Verdict::Failed(_)));
    }
}
