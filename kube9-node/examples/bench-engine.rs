//! The straight-to-engine baseline of `scripts/bench-pod-start`: N pods started through the
//! engine API with no control plane, by the same runtime code the node agent uses
//! ([`kube9_node::cri::DockerRuntime`]), with C pods in flight at once.
//!
//! A pod is what the agent makes of one `kube9/busybox:1` container running `sleep 3600`
//! with a 10m CPU request: a sandbox (the pause image, on its own engine network) and an app
//! container joined to the sandbox's network and IPC namespaces, built from the pod spec by
//! the agent's own functions (`cri::spec`), so the create bodies are the agent's. Per pod:
//!
//! - default: `run_sandbox` (create and start the sandbox; the runtime first checks that the
//!   pause image exists), `create_container` (the runtime inspects the sandbox, then creates),
//!   `start_container`;
//! - `--agent-calls`: the same with every other call the agent's `CriBackend` makes while it
//!   starts a pod: inspect the sandbox (pod IP), `ensure_image` (inspect the image), inspect
//!   the started container (pid), and a `wait` on it held open until the end;
//! - `--without-sandbox`: no sandbox, the app container alone on the network (created with
//!   bollard from the same config): not what the agent does, what Swarm makes of a replica.
//!
//! Prints `pods=N concurrency=C calls=... seconds=S` (from the first call to the last pod
//! started) and, on stderr, the latency of each call. Everything carries the label
//! `io.kube9.cluster=<cluster>` (default `bench-engine`) and is removed at the end, as is the
//! network. A measurement, never a test.
//!
//! ```sh
//! cargo run --release -p kube9-node --example bench-engine -- --pods 100 --concurrency 100
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, NetworkCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StartContainerOptions,
};
use clap::Parser;
use futures::StreamExt;
use kube9_node::cri::{self, ContainerRuntime, DockerConfig, DockerRuntime, PullPolicy};
use kube9_proto::pb;
use parking_lot::Mutex;

#[derive(Debug, Parser)]
#[command(about = "Starts N pods (sandbox + container) straight through the engine")]
struct Args {
    /// Pods to start.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// Pods in flight at once (default: all of them, as node agents start every pod they are
    /// sent at once).
    #[arg(long)]
    concurrency: Option<usize>,
    /// The app container's image.
    #[arg(long, default_value = "kube9/busybox:1")]
    image: String,
    /// Cluster id in the labels (`io.kube9.cluster`) and the pod names' prefix.
    #[arg(long, default_value = "bench-engine")]
    cluster: String,
    /// Engine network the sandboxes join (kube9 attaches them to the cluster network); created
    /// with the cluster label when missing, removed at the end.
    #[arg(long, default_value = "bench-engine-net")]
    network: String,
    /// The static kube9-node to build the pause image from if the engine lacks it.
    #[arg(long)]
    pause_program: Option<PathBuf>,
    /// Also make the agent's other calls (inspects, image check, a held wait).
    #[arg(long)]
    agent_calls: bool,
    /// One container per pod, on the network, without a sandbox: not what the agent does,
    /// but what Swarm makes of a replica (for comparison).
    #[arg(long, conflicts_with = "agent_calls")]
    without_sandbox: bool,
    /// Leave the pods' containers and the network in place.
    #[arg(long)]
    keep: bool,
    /// Only remove what an earlier run with this cluster id left.
    #[arg(long)]
    cleanup: bool,
}

/// Latencies of each kind of call, in call order.
#[derive(Default)]
struct Calls(Mutex<BTreeMap<&'static str, Vec<Duration>>>);

impl Calls {
    /// Runs `call`, recording how long it took under `name`.
    async fn timed<T>(&self, name: &'static str, call: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let out = call.await;
        self.0
            .lock()
            .entry(name)
            .or_default()
            .push(started.elapsed());
        out
    }

    fn report(&self) {
        for (name, times) in self.0.lock().iter_mut() {
            times.sort();
            let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len() as f64;
            eprintln!(
                "{name:<18} n={:<4} mean={mean:7.1} ms  p50={:7.1}  p90={:7.1}  max={:7.1}",
                times.len(),
                ms(at(0.5)),
                ms(at(0.9)),
                ms(at(1.0)),
            );
        }
    }
}

/// The pod the bench manifest applies, as kube9d sends it to an agent.
fn pod(args: &Args, index: usize, run: u32) -> pb::Pod {
    pb::Pod {
        name: format!("{}-{index}", args.cluster),
        // A binding's uid, as kube9d makes them: 16 hex digits.
        uid: format!("{run:08x}{index:08x}"),
        containers: vec![pb::Container {
            name: "c".into(),
            image: args.image.clone(),
            image_pull_policy: "IfNotPresent".into(),
            command: vec!["sleep".into(), "3600".into()],
            cpu_request_millis: 10,
            ..Default::default()
        }],
        cpu_request_millis: 10,
        ..Default::default()
    }
}

/// Starts one pod as the agent's `CriBackend` does (`prepare`, then `start` of its one
/// container); returns the held wait, if any.
async fn start_pod(
    runtime: &DockerRuntime,
    args: &Args,
    calls: &Calls,
    image_id: &str,
    pod: pb::Pod,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let meta = cri::spec::pod_meta(&pod, &args.cluster, &args.cluster);
    if args.without_sandbox {
        start_alone(runtime, args, calls, image_id, &meta, &pod).await?;
        return Ok(None);
    }
    let config = cri::spec::sandbox_config(&meta, &pod, 0, Some(args.network.clone()));
    let sandbox = calls
        .timed("run_sandbox", runtime.run_sandbox(&config))
        .await?;
    let container = &pod.containers[0];
    let mut image = image_id.to_string();
    if args.agent_calls {
        calls
            .timed("inspect_sandbox", runtime.inspect_sandbox(&sandbox))
            .await?;
        let policy = PullPolicy::resolve(&container.image_pull_policy, &container.image);
        image = calls
            .timed(
                "ensure_image",
                runtime.ensure_image(&container.image, policy),
            )
            .await?
            .id;
    }
    let config = cri::spec::container_config(&meta, &pod, container, &image, 0)?;
    let id = calls
        .timed(
            "create_container",
            runtime.create_container(&sandbox, &config),
        )
        .await?;
    calls
        .timed("start_container", runtime.start_container(&id))
        .await?;
    if !args.agent_calls {
        return Ok(None);
    }
    calls
        .timed("inspect_container", runtime.inspect_container(&id))
        .await?;
    let runtime = runtime.clone();
    Ok(Some(tokio::spawn(async move {
        let _ = runtime.wait_container(&id).await;
    })))
}

/// `--without-sandbox`: the pod's one container made as the agent makes it (same config,
/// labels and name), but on the network itself instead of in a sandbox's namespaces.
async fn start_alone(
    runtime: &DockerRuntime,
    args: &Args,
    calls: &Calls,
    image_id: &str,
    meta: &cri::PodMeta,
    pod: &pb::Pod,
) -> anyhow::Result<()> {
    let config = cri::spec::container_config(meta, pod, &pod.containers[0], image_id, 0)?;
    let mut labels = cri::labels::pod_labels(meta);
    labels.insert(cri::labels::CONTAINER_NAME.into(), config.name.clone());
    labels.insert(cri::labels::ATTEMPT.into(), "0".into());
    let shares = config
        .resources
        .cpu_request_millis
        .map(|m| (m as i64 * 1024 / 1000).max(2));
    let body = ContainerCreateBody {
        image: Some(config.image.clone()),
        entrypoint: Some(config.command.clone()),
        env: Some(config.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        hostname: Some(pod.name.clone()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(args.network.clone()),
            cpu_shares: shares,
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".into(), "10m".into()),
                    ("max-file".into(), "3".into()),
                ])),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let name = cri::labels::container_name(meta, &config.name, 0);
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    let docker = runtime.docker();
    let created = calls
        .timed(
            "create (bollard)",
            docker.create_container(Some(options), body),
        )
        .await?;
    calls
        .timed(
            "start (bollard)",
            docker.start_container(&created.id, None::<StartContainerOptions>),
        )
        .await?;
    Ok(())
}

/// Creates the sandboxes' network, labelled with the cluster, unless it exists.
async fn ensure_network(runtime: &DockerRuntime, args: &Args) -> anyhow::Result<()> {
    let docker = runtime.docker();
    if docker.inspect_network(&args.network, None).await.is_ok() {
        return Ok(());
    }
    let request = NetworkCreateRequest {
        name: args.network.clone(),
        driver: Some("bridge".into()),
        labels: Some(HashMap::from([(
            cri::labels::CLUSTER.to_string(),
            args.cluster.clone(),
        )])),
        ..Default::default()
    };
    docker
        .create_network(request)
        .await
        .with_context(|| format!("failed to create network {}", args.network))?;
    Ok(())
}

/// Removes every container carrying the cluster label (app containers before the sandboxes
/// whose namespaces they share, as the agent's `remove_sandbox` does), then the network if it
/// carries the label. A network the engine will not remove is left with a warning.
async fn cleanup(runtime: &DockerRuntime, args: &Args) -> anyhow::Result<usize> {
    let docker = runtime.docker();
    let label = format!("{}={}", cri::labels::CLUSTER, args.cluster);
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let listed =
        (docker.list_containers(Some(options)).await).context("failed to list containers")?;
    let (sandboxes, apps): (Vec<_>, Vec<_>) = listed.into_iter().partition(|c| {
        let labels = c.labels.as_ref();
        labels
            .and_then(|l| l.get(cri::labels::SANDBOX))
            .map(String::as_str)
            == Some("true")
    });
    let mut removed = 0;
    for batch in [apps, sandboxes] {
        let ids: Vec<String> = batch.into_iter().filter_map(|c| c.id).collect();
        removed += ids.len();
        let removes = futures::stream::iter(ids).map(|id| async move {
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            if let Err(e) = docker.remove_container(&id, Some(options)).await {
                eprintln!("failed to remove container {id}: {e}");
            }
        });
        removes.buffer_unordered(8).collect::<Vec<()>>().await;
    }
    if let Ok(network) = docker.inspect_network(&args.network, None).await {
        let ours = (network.labels.as_ref()).and_then(|l| l.get(cri::labels::CLUSTER));
        if ours == Some(&args.cluster) {
            // The endpoints of containers just removed may linger for a moment.
            let attempts = if removed > 0 { 25 } else { 1 };
            for attempt in 1..=attempts {
                match docker.remove_network(&args.network).await {
                    Ok(()) => break,
                    Err(e) if attempt == attempts => {
                        eprintln!("warning: left network {}: {e}", args.network)
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
    }
    Ok(removed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.cluster.is_empty() || args.cluster.contains(['_', '=']) {
        bail!("--cluster must be non-empty, without '_' or '='");
    }
    let config = DockerConfig {
        pause_program: match &args.pause_program {
            Some(program) => program.clone(),
            // Never this example's own executable: it cannot be a pause program.
            None => PathBuf::from("/nonexistent/kube9-node"),
        },
        ..Default::default()
    };
    let runtime = DockerRuntime::connect(config.clone()).await?;
    let left = cleanup(&runtime, &args).await?;
    if left > 0 {
        eprintln!("removed {left} containers an earlier run left");
    }
    if args.cleanup {
        return Ok(());
    }
    if (runtime.docker().inspect_image(&config.pause_image).await).is_err()
        && args.pause_program.is_none()
    {
        bail!(
            "the engine has no {}: give --pause-program <static kube9-node>",
            config.pause_image
        );
    }
    ensure_network(&runtime, &args).await?;
    // The agent checks the image before each container (--agent-calls does too); the
    // baseline resolves it once, before the clock starts.
    let image = runtime
        .ensure_image(&args.image, PullPolicy::IfNotPresent)
        .await?;
    let concurrency = args.concurrency.unwrap_or(args.pods).max(1);
    let run = std::process::id();
    let calls = Calls::default();

    let started = Instant::now();
    let pods = futures::stream::iter(0..args.pods).map(|i| {
        let (runtime, args, calls, image) = (&runtime, &args, &calls, image.id.as_str());
        async move {
            let out = start_pod(runtime, args, calls, image, pod(args, i + 1, run)).await;
            (out, started.elapsed())
        }
    });
    let results: Vec<_> = pods.buffer_unordered(concurrency).collect().await;
    let seconds = started.elapsed().as_secs_f64();

    let mut failed = 0;
    let mut waits = Vec::new();
    let mut done: Vec<Duration> = Vec::new();
    for (result, at) in results {
        match result {
            Ok(wait) => {
                waits.extend(wait);
                done.push(at);
            }
            Err(e) => {
                failed += 1;
                eprintln!("pod failed: {e:#}");
            }
        }
    }
    calls.report();
    done.sort();
    if let (Some(first), Some(half)) = (done.first(), done.get(done.len() / 2)) {
        eprintln!(
            "first pod started at {:.2} s, half at {:.2} s",
            first.as_secs_f64(),
            half.as_secs_f64()
        );
    }
    let mode = match (args.agent_calls, args.without_sandbox) {
        (true, _) => "agent",
        (_, true) => "without-sandbox",
        _ => "minimal",
    };
    println!(
        "pods={} concurrency={concurrency} calls={mode} seconds={seconds:.2}",
        args.pods
    );
    for wait in waits {
        wait.abort();
    }
    if !args.keep {
        let removing = Instant::now();
        let removed = cleanup(&runtime, &args).await?;
        eprintln!(
            "removed {removed} containers in {:.1} s",
            removing.elapsed().as_secs_f64()
        );
    }
    if failed > 0 {
        bail!("{failed} of {} pods failed to start", args.pods);
    }
    Ok(())
}
