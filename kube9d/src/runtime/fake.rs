//! A recording fake [`NodeRuntime`] for unit tests of the code that drives runtimes (node
//! operations, the monitor, reconciliation), without Docker or processes.
//!
//! [`FakeRuntime`] records every call in order ([`FakeRuntime::calls`]), lets a test script
//! failures per operation ([`FakeRuntime::fail_next`], [`FakeRuntime::fail_times`] and
//! shorthands such as [`FakeRuntime::fail_next_restart`] or [`FakeRuntime::fail_removes`]),
//! and keeps a small table of instances so that `inspect` and `list_owned` reflect what was
//! launched, killed and removed. Scripted failures are consumed in order; a call that fails
//! is still recorded but changes nothing.
//!
//! It behaves like the real runtimes where the trait documents it: `launch` replaces the
//! node's previous instance, `restart` of a removed instance is [`Error::NotFound`] and keeps
//! the handle's id (like a Docker container started again), `kill` and `set_partitioned` of
//! a missing instance are [`Error::NotFound`], `stop` and `remove` of one are no-ops.
//!
//! ```ignore
//! let fake = Arc::new(FakeRuntime::new().without_partition());
//! fake.fail_removes(2);
//! let runtime: Arc<dyn NodeRuntime> = fake.clone();
//! // … drive the code under test …
//! assert_eq!(fake.calls(), [Call::Launch { node: "n1".into() }, /* … */]);
//! ```

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use kube9_proto::pb::RuntimeHandle;

use super::{Error, NodeLaunch, NodeRuntime, Observed, OwnedInstance, Result, RuntimeKind};

/// Exit code a stopped instance reports (SIGTERM).
pub const STOPPED_CODE: i64 = 128 + 15;
/// Exit code a killed instance reports (SIGKILL).
pub const KILLED_CODE: i64 = 128 + 9;

/// One [`NodeRuntime`] operation, to script its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Prepare,
    Launch,
    Inspect,
    Restart,
    Stop,
    Kill,
    Remove,
    SetPartitioned,
    ListOwned,
}

/// A call the fake received. Handle-based calls name the handle's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Prepare,
    Launch { node: String },
    Inspect { id: String },
    Restart { id: String, node: String },
    Stop { id: String, grace: Duration },
    Kill { id: String },
    Remove { id: String },
    SetPartitioned { id: String, partitioned: bool },
    ListOwned,
}

impl Call {
    /// The operation this call was.
    pub fn op(&self) -> Op {
        match self {
            Call::Prepare => Op::Prepare,
            Call::Launch { .. } => Op::Launch,
            Call::Inspect { .. } => Op::Inspect,
            Call::Restart { .. } => Op::Restart,
            Call::Stop { .. } => Op::Stop,
            Call::Kill { .. } => Op::Kill,
            Call::Remove { .. } => Op::Remove,
            Call::SetPartitioned { .. } => Op::SetPartitioned,
            Call::ListOwned => Op::ListOwned,
        }
    }
}

/// An instance in the fake's table.
#[derive(Debug, Clone)]
struct Instance {
    node: String,
    id: String,
    ip: String,
    observed: Observed,
    partitioned: bool,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    failures: HashMap<Op, VecDeque<Error>>,
    /// In launch order.
    instances: Vec<Instance>,
    launched: u64,
}

impl State {
    fn instance(&mut self, id: &str) -> Option<&mut Instance> {
        self.instances.iter_mut().find(|i| i.id == id)
    }

    /// Records the call and returns the failure scripted for it, if any.
    fn record(&mut self, call: Call) -> Result<()> {
        let op = call.op();
        self.calls.push(call);
        match self.failures.get_mut(&op).and_then(VecDeque::pop_front) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// A [`NodeRuntime`] that records its calls and plays scripted results. See the module docs.
pub struct FakeRuntime {
    kind: RuntimeKind,
    partitions: bool,
    state: parking_lot::Mutex<State>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRuntime {
    /// A fake of kind [`RuntimeKind::Docker`] that supports partitions and fails nothing.
    pub fn new() -> Self {
        Self {
            kind: RuntimeKind::Docker,
            partitions: true,
            state: parking_lot::Mutex::default(),
        }
    }

    /// Hands out handles of `kind` (and reports it from `kind()`).
    pub fn with_kind(mut self, kind: RuntimeKind) -> Self {
        self.kind = kind;
        self
    }

    /// `set_partitioned` returns [`Error::Unsupported`], like the process runtime.
    pub fn without_partition(mut self) -> Self {
        self.partitions = false;
        self
    }

    /// The next call of `op` fails with `err` (after failures scripted before it).
    pub fn fail_next(&self, op: Op, err: Error) -> &Self {
        let mut state = self.state.lock();
        state.failures.entry(op).or_default().push_back(err);
        self
    }

    /// The next `n` calls of `op` fail with [`Error::Other`]; later ones succeed.
    pub fn fail_times(&self, op: Op, n: usize) -> &Self {
        for i in 1..=n {
            let err = Error::Other(format!("scripted {op:?} failure {i} of {n}"));
            self.fail_next(op, err);
        }
        self
    }

    /// The next `launch` fails with `err`.
    pub fn fail_next_launch(&self, err: Error) -> &Self {
        self.fail_next(Op::Launch, err)
    }

    /// The next `restart` fails with `err`.
    pub fn fail_next_restart(&self, err: Error) -> &Self {
        self.fail_next(Op::Restart, err)
    }

    /// The next `n` calls of `remove` fail; later ones succeed.
    pub fn fail_removes(&self, n: usize) -> &Self {
        self.fail_times(Op::Remove, n)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    /// Every call so far, in order, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state.lock().calls)
    }

    /// The calls of `op` so far, in order.
    pub fn calls_of(&self, op: Op) -> Vec<Call> {
        let state = self.state.lock();
        state
            .calls
            .iter()
            .filter(|c| c.op() == op)
            .cloned()
            .collect()
    }

    /// The handle of the node's current instance, if it has one.
    pub fn handle_of(&self, node: &str) -> Option<RuntimeHandle> {
        let state = self.state.lock();
        let instance = state.instances.iter().find(|i| i.node == node)?;
        Some(self.handle(instance))
    }

    /// What the node's current instance is doing (`Missing` without one).
    pub fn observed(&self, node: &str) -> Observed {
        let state = self.state.lock();
        (state.instances.iter().find(|i| i.node == node))
            .map_or(Observed::Missing, |i| i.observed.clone())
    }

    /// Makes the node's instance report `observed` from now on (it crashed, was OOM-killed,
    /// came back…). `Observed::Missing` drops the instance, as if it was deleted behind
    /// kube9d's back. Returns whether the node had an instance.
    pub fn set_observed(&self, node: &str, observed: Observed) -> bool {
        let mut state = self.state.lock();
        if observed == Observed::Missing {
            let before = state.instances.len();
            state.instances.retain(|i| i.node != node);
            return state.instances.len() != before;
        }
        match state.instances.iter_mut().find(|i| i.node == node) {
            Some(instance) => {
                instance.observed = observed;
                true
            }
            None => false,
        }
    }

    /// Whether the node's instance is cut off the network.
    pub fn is_partitioned(&self, node: &str) -> bool {
        let state = self.state.lock();
        (state.instances.iter()).any(|i| i.node == node && i.partitioned)
    }

    fn handle(&self, instance: &Instance) -> RuntimeHandle {
        RuntimeHandle {
            kind: self.kind.as_str().into(),
            id: instance.id.clone(),
            ip: instance.ip.clone(),
            state: instance.observed.label(),
            container_name: format!("fake-{}", instance.node),
        }
    }
}

#[async_trait]
impl NodeRuntime for FakeRuntime {
    fn kind(&self) -> RuntimeKind {
        self.kind
    }

    async fn prepare(&self) -> Result<()> {
        self.state.lock().record(Call::Prepare)
    }

    async fn launch(&self, spec: &NodeLaunch) -> Result<RuntimeHandle> {
        let mut state = self.state.lock();
        state.record(Call::Launch {
            node: spec.name.clone(),
        })?;
        state.instances.retain(|i| i.node != spec.name);
        state.launched += 1;
        let n = state.launched;
        let instance = Instance {
            node: spec.name.clone(),
            id: format!("fake-{n}"),
            ip: format!("10.99.{}.{}", n / 250, n % 250 + 2),
            observed: Observed::Running,
            partitioned: false,
        };
        let handle = self.handle(&instance);
        state.instances.push(instance);
        Ok(handle)
    }

    async fn inspect(&self, handle: &RuntimeHandle) -> Result<Observed> {
        let mut state = self.state.lock();
        state.record(Call::Inspect {
            id: handle.id.clone(),
        })?;
        Ok((state.instance(&handle.id)).map_or(Observed::Missing, |i| i.observed.clone()))
    }

    async fn restart(&self, handle: &RuntimeHandle, spec: &NodeLaunch) -> Result<RuntimeHandle> {
        let mut state = self.state.lock();
        state.record(Call::Restart {
            id: handle.id.clone(),
            node: spec.name.clone(),
        })?;
        let instance =
            (state.instance(&handle.id)).ok_or_else(|| Error::NotFound(spec.name.clone()))?;
        instance.observed = Observed::Running;
        let instance = instance.clone();
        Ok(self.handle(&instance))
    }

    async fn stop(&self, handle: &RuntimeHandle, grace: Duration) -> Result<()> {
        let mut state = self.state.lock();
        state.record(Call::Stop {
            id: handle.id.clone(),
            grace,
        })?;
        if let Some(instance) = state.instance(&handle.id) {
            if instance.observed == Observed::Running {
                instance.observed = Observed::Exited {
                    code: STOPPED_CODE,
                    oom: false,
                };
            }
        }
        Ok(())
    }

    async fn kill(&self, handle: &RuntimeHandle) -> Result<()> {
        let mut state = self.state.lock();
        state.record(Call::Kill {
            id: handle.id.clone(),
        })?;
        let instance = (state.instance(&handle.id))
            .ok_or_else(|| Error::NotFound(handle.container_name.clone()))?;
        if instance.observed == Observed::Running {
            instance.observed = Observed::Exited {
                code: KILLED_CODE,
                oom: false,
            };
        }
        Ok(())
    }

    async fn remove(&self, handle: &RuntimeHandle) -> Result<()> {
        let mut state = self.state.lock();
        state.record(Call::Remove {
            id: handle.id.clone(),
        })?;
        state.instances.retain(|i| i.id != handle.id);
        Ok(())
    }

    async fn set_partitioned(&self, handle: &RuntimeHandle, partitioned: bool) -> Result<()> {
        let mut state = self.state.lock();
        state.record(Call::SetPartitioned {
            id: handle.id.clone(),
            partitioned,
        })?;
        if !self.partitions {
            return Err(Error::Unsupported("partition", self.kind.as_str()));
        }
        let instance = (state.instance(&handle.id))
            .ok_or_else(|| Error::NotFound(handle.container_name.clone()))?;
        instance.partitioned = partitioned;
        Ok(())
    }

    async fn list_owned(&self) -> Result<Vec<OwnedInstance>> {
        let mut state = self.state.lock();
        state.record(Call::ListOwned)?;
        let owned = (state.instances.iter())
            .map(|i| OwnedInstance {
                node_name: i.node.clone(),
                handle: self.handle(i),
                observed: i.observed.clone(),
            })
            .collect();
        Ok(owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> NodeLaunch {
        NodeLaunch {
            name: name.into(),
            cpu_millis: 1000,
            cluster_id: "c1".into(),
            server_port: 7777,
            heartbeat_interval_ms: 500,
            instance_id: format!("test-{name}"),
        }
    }

    fn nodes(owned: &[OwnedInstance]) -> Vec<&str> {
        owned.iter().map(|o| o.node_name.as_str()).collect()
    }

    #[tokio::test]
    async fn calls_are_recorded_in_order_and_the_table_follows_them() {
        let fake = FakeRuntime::new();
        fake.prepare().await.unwrap();
        let n1 = fake.launch(&spec("n1")).await.unwrap();
        let n2 = fake.launch(&spec("n2")).await.unwrap();
        assert_eq!((n1.kind.as_str(), n1.state.as_str()), ("docker", "running"));
        assert_ne!(n1.id, n2.id);
        assert_ne!(n1.ip, n2.ip);
        assert_eq!(fake.handle_of("n1"), Some(n1.clone()));

        fake.kill(&n1).await.unwrap();
        let exited = Observed::Exited {
            code: KILLED_CODE,
            oom: false,
        };
        assert_eq!(fake.inspect(&n1).await.unwrap(), exited);
        let restarted = fake.restart(&n1, &spec("n1")).await.unwrap();
        assert_eq!(restarted.id, n1.id);
        assert_eq!(fake.observed("n1"), Observed::Running);

        fake.remove(&n2).await.unwrap();
        fake.remove(&n2).await.unwrap();
        assert_eq!(nodes(&fake.list_owned().await.unwrap()), ["n1"]);
        assert_eq!(fake.inspect(&n2).await.unwrap(), Observed::Missing);
        assert!(matches!(fake.kill(&n2).await, Err(Error::NotFound(_))));
        assert!(matches!(
            fake.restart(&n2, &spec("n2")).await,
            Err(Error::NotFound(_))
        ));

        // A second launch replaces the node's instance.
        let again = fake.launch(&spec("n1")).await.unwrap();
        assert_ne!(again.id, n1.id);
        assert_eq!(fake.inspect(&n1).await.unwrap(), Observed::Missing);
        assert_eq!(nodes(&fake.list_owned().await.unwrap()), ["n1"]);

        let id = |h: &RuntimeHandle| h.id.clone();
        assert_eq!(
            fake.take_calls(),
            [
                Call::Prepare,
                Call::Launch { node: "n1".into() },
                Call::Launch { node: "n2".into() },
                Call::Kill { id: id(&n1) },
                Call::Inspect { id: id(&n1) },
                Call::Restart {
                    id: id(&n1),
                    node: "n1".into()
                },
                Call::Remove { id: id(&n2) },
                Call::Remove { id: id(&n2) },
                Call::ListOwned,
                Call::Inspect { id: id(&n2) },
                Call::Kill { id: id(&n2) },
                Call::Restart {
                    id: id(&n2),
                    node: "n2".into()
                },
                Call::Launch { node: "n1".into() },
                Call::Inspect { id: id(&n1) },
                Call::ListOwned,
            ]
        );
        assert!(fake.calls().is_empty());
    }

    #[tokio::test]
    async fn scripted_failures_are_played_once_each_and_change_nothing() {
        let fake = FakeRuntime::new();
        let n1 = fake.launch(&spec("n1")).await.unwrap();

        fake.fail_removes(2);
        for _ in 0..2 {
            let err = fake.remove(&n1).await.unwrap_err();
            assert!(err.to_string().contains("scripted Remove failure"), "{err}");
            assert_eq!(fake.observed("n1"), Observed::Running);
        }
        fake.remove(&n1).await.unwrap();
        assert_eq!(fake.observed("n1"), Observed::Missing);
        assert_eq!(fake.calls_of(Op::Remove).len(), 3);

        let n1 = fake.launch(&spec("n1")).await.unwrap();
        fake.kill(&n1).await.unwrap();
        fake.fail_next_restart(Error::Image("no image".into()))
            .fail_next_restart(Error::NotFound("n1".into()));
        let first = fake.restart(&n1, &spec("n1")).await.unwrap_err();
        assert!(matches!(first, Error::Image(_)), "{first}");
        let second = fake.restart(&n1, &spec("n1")).await.unwrap_err();
        assert!(matches!(second, Error::NotFound(_)), "{second}");
        assert!(matches!(fake.observed("n1"), Observed::Exited { .. }));
        fake.restart(&n1, &spec("n1")).await.unwrap();
        assert_eq!(fake.observed("n1"), Observed::Running);

        fake.fail_next_launch(Error::Other("engine down".into()));
        assert!(fake.launch(&spec("n2")).await.is_err());
        assert_eq!(nodes(&fake.list_owned().await.unwrap()), ["n1"]);
        assert_eq!(
            fake.calls_of(Op::Launch),
            [
                Call::Launch { node: "n1".into() },
                Call::Launch { node: "n1".into() },
                Call::Launch { node: "n2".into() },
            ]
        );
    }

    #[tokio::test]
    async fn partitions_are_tracked_or_unsupported() {
        let fake = FakeRuntime::new();
        let n1 = fake.launch(&spec("n1")).await.unwrap();
        fake.set_partitioned(&n1, true).await.unwrap();
        assert!(fake.is_partitioned("n1"));
        fake.set_partitioned(&n1, false).await.unwrap();
        assert!(!fake.is_partitioned("n1"));

        let process = FakeRuntime::new()
            .with_kind(RuntimeKind::Process)
            .without_partition();
        let n1 = process.launch(&spec("n1")).await.unwrap();
        assert_eq!(n1.kind, "process");
        assert_eq!(process.kind(), RuntimeKind::Process);
        let refused = process.set_partitioned(&n1, true).await;
        assert!(matches!(
            refused,
            Err(Error::Unsupported("partition", "process"))
        ));
        assert!(!process.is_partitioned("n1"));
        assert_eq!(
            process.calls().last(),
            Some(&Call::SetPartitioned {
                id: n1.id.clone(),
                partitioned: true
            })
        );
    }

    #[tokio::test]
    async fn an_instance_can_be_made_to_crash_or_vanish() {
        let fake = FakeRuntime::new();
        let n1 = fake.launch(&spec("n1")).await.unwrap();
        let oom = Observed::Exited {
            code: 137,
            oom: true,
        };
        assert!(fake.set_observed("n1", oom.clone()));
        assert_eq!(fake.inspect(&n1).await.unwrap(), oom);
        let owned = fake.list_owned().await.unwrap();
        assert_eq!(owned[0].handle.state, "oom-killed");

        assert!(fake.set_observed("n1", Observed::Missing));
        assert!(fake.list_owned().await.unwrap().is_empty());
        assert!(!fake.set_observed("n1", Observed::Running));
    }
}
