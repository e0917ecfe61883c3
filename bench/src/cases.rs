//! The cases of issue 14. Each starts its own kube9d and simulated nodes, records rows as it
//! goes (a case stopped by its time limit keeps what it measured), and kills what it started.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use kube9_proto::pb::{self, watch_event::Object, PodPhase};

use crate::cluster::{apply, delete_all, pods, usage, wait_healthy, Client, Kube9d};
use crate::report::{latency_rows, Row};

/// How big each case runs.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// (simulated nodes, pods) of the scheduling case.
    pub scheduling: Vec<(usize, usize)>,
    pub churn_nodes: usize,
    pub churn_pods: usize,
    /// Apply + get + list + delete rounds measured under churn.
    pub churn_rounds: usize,
    /// Cumulative node counts of the heartbeat case.
    pub heartbeat_nodes: Vec<usize>,
    pub heartbeat_window: Duration,
    pub memory_nodes: usize,
    /// Cumulative pod counts of the memory case.
    pub memory_pods: Vec<usize>,
    pub rest: Duration,
    pub failover_pods: usize,
    pub failover_spares: usize,
    pub delete_nodes: usize,
    pub deletes: Vec<usize>,
    /// Pods of the Docker side by side, and the systems it runs (`scripts/bench-pod-start`).
    pub docker_pods: usize,
    pub docker_systems: &'static str,
    /// How long one case may run before it is stopped.
    pub limit: Duration,
}

impl Sizes {
    pub fn full() -> Sizes {
        Sizes {
            scheduling: vec![(1_000, 10_000), (5_000, 50_000)],
            churn_nodes: 1_000,
            churn_pods: 10_000,
            churn_rounds: 300,
            heartbeat_nodes: vec![1_000, 5_000, 10_000],
            heartbeat_window: Duration::from_secs(10),
            memory_nodes: 5_000,
            memory_pods: vec![5_000, 150_000],
            rest: Duration::from_secs(10),
            failover_pods: 1_000,
            failover_spares: 10,
            delete_nodes: 100,
            deletes: vec![1_000, 10_000],
            docker_pods: 100,
            docker_systems: "kube9 engine swarm",
            limit: Duration::from_secs(900),
        }
    }

    /// Every case at a tiny size: the suite keeps working (CI), the figures mean little.
    pub fn quick() -> Sizes {
        Sizes {
            scheduling: vec![(20, 200), (50, 500)],
            churn_nodes: 20,
            churn_pods: 600,
            churn_rounds: 20,
            heartbeat_nodes: vec![20, 100],
            heartbeat_window: Duration::from_secs(2),
            memory_nodes: 20,
            memory_pods: vec![100, 500],
            rest: Duration::from_secs(1),
            failover_pods: 100,
            failover_spares: 3,
            delete_nodes: 20,
            deletes: vec![100, 500],
            // No Swarm in the short mode: it would switch CI's engine into a swarm and back.
            docker_pods: 5,
            docker_systems: "kube9 engine",
            limit: Duration::from_secs(60),
        }
    }
}

/// What every case needs.
pub struct Bench {
    pub bin_dir: PathBuf,
    pub sizes: Sizes,
    pub keep: bool,
}

/// Largest Apply request (kube9d reads requests of up to 4 MiB; 10,000 small pods are ~0.6).
const APPLY_CHUNK: usize = 10_000;
/// Pod changes a second the paced churn of case 2 makes (creates and deletes).
const CHURN_PACE: u32 = 2_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What [`track`] has seen of the pods it follows.
struct Progress<F> {
    label: String,
    expect: usize,
    t0: Instant,
    done: F,
    bound: HashSet<String>,
    finished: HashSet<String>,
    t_bound: Option<Duration>,
    t_done: Option<Duration>,
}

impl<F: Fn(&pb::Pod) -> bool> Progress<F> {
    fn note(&mut self, pod: &pb::Pod) {
        if pod.labels.get("app") != Some(&self.label) {
            return;
        }
        if !pod.node.is_empty() {
            self.bound.insert(pod.name.clone());
        }
        if (self.done)(pod) {
            self.finished.insert(pod.name.clone());
        } else {
            self.finished.remove(&pod.name);
        }
        if self.t_bound.is_none() && self.bound.len() >= self.expect {
            self.t_bound = Some(self.t0.elapsed());
        }
        if self.t_done.is_none() && self.finished.len() >= self.expect {
            self.t_done = Some(self.t0.elapsed());
        }
    }

    fn result(&self) -> Option<(Duration, Duration)> {
        self.t_bound.zip(self.t_done)
    }
}

/// When all `expect` pods labelled `app=<label>` were seen bound, and seen `done` (Running,
/// by default), measured from `t0` by a list followed by a watch from the list's version (as
/// a client sees it: after the change is durable); a watch that falls behind lists again.
async fn track(
    mut client: Client,
    label: String,
    expect: usize,
    t0: Instant,
    limit: Duration,
    done: impl Fn(&pb::Pod) -> bool,
) -> anyhow::Result<(Duration, Duration)> {
    let selector = format!("app={label}");
    let mut progress = Progress {
        label,
        expect,
        t0,
        done,
        bound: HashSet::new(),
        finished: HashSet::new(),
        t_bound: None,
        t_done: None,
    };
    let deadline = tokio::time::Instant::from_std(t0 + limit);
    loop {
        let list = client
            .list_pods(pb::ListPodsRequest {
                label_selector: selector.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        for pod in &list.pods {
            progress.note(pod);
        }
        if let Some(result) = progress.result() {
            return Ok(result);
        }
        let watch = client
            .watch(pb::WatchRequest {
                kinds: vec!["pod".into()],
                resource_version: list.resource_version,
            })
            .await;
        let mut stream = match watch {
            Ok(stream) => stream.into_inner(),
            // More changed since the list than kube9d's history holds: list again.
            Err(status) if status.code() == tonic::Code::OutOfRange => continue,
            Err(status) => return Err(status.into()),
        };
        loop {
            match tokio::time::timeout_at(deadline, stream.message()).await {
                Err(_) => bail!(
                    "{}/{expect} bound, {}/{expect} done after {limit:?}",
                    progress.bound.len(),
                    progress.finished.len()
                ),
                Ok(Ok(Some(event))) => {
                    if let Some(Object::Pod(pod)) = event.object {
                        progress.note(&pod);
                        if let Some(result) = progress.result() {
                            return Ok(result);
                        }
                    }
                }
                // Fell behind or ended: list again.
                Ok(Ok(None)) | Ok(Err(_)) => break,
            }
        }
    }
}

fn running(pod: &pb::Pod) -> bool {
    pod.phase() == PodPhase::Running
}

/// Pod start latency (created → Running, kube9d's clock) of the pods labelled `label`.
async fn start_latencies(client: &mut Client, label: &str) -> anyhow::Result<Vec<f64>> {
    let list = client
        .list_pods(pb::ListPodsRequest {
            label_selector: format!("app={label}"),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(list
        .pods
        .iter()
        .filter(|p| p.started_ms > 0)
        .map(|p| (p.started_ms - p.created_ms) as f64)
        .collect())
}

impl Bench {
    /// Case 7: pod start through real containers, on Docker nodes, side by side with the
    /// same containers made straight through the engine API and with Swarm:
    /// `scripts/bench-pod-start` (its own kube9d with 3 Docker nodes; see BENCHMARKS.md).
    pub async fn docker(&self, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let s = &self.sizes;
        let case = format!("7 Docker side by side, {} pods", s.docker_pods);
        let engine = tokio::process::Command::new("docker")
            .arg("info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await;
        if !engine.is_ok_and(|status| status.success()) {
            rows.push(Row::failed(
                &case,
                "skipped: no Docker engine answers".into(),
            ));
            return Ok(());
        }
        let results =
            std::env::temp_dir().join(format!("kube9-bench-docker-{}", std::process::id()));
        let _ = std::fs::remove_file(&results);
        let status = tokio::process::Command::new("scripts/bench-pod-start")
            .arg(s.docker_pods.to_string())
            .env("BENCH_SYSTEMS", s.docker_systems)
            .env("BENCH_RESULTS", &results)
            .kill_on_drop(true)
            .status()
            .await?;
        let text = std::fs::read_to_string(&results).unwrap_or_default();
        let _ = std::fs::remove_file(&results);
        if !status.success() {
            bail!("scripts/bench-pod-start failed ({status})");
        }
        for line in text.lines() {
            let Some((system, secs)) = line.split_once(' ') else {
                continue;
            };
            let Ok(secs) = secs.trim().parse::<f64>() else {
                continue;
            };
            let what = match system {
                "kube9" => "kube9, 3 Docker nodes: applied → all Running and Ready",
                "engine" => "engine API, no control plane: sandbox + container per pod",
                "engine-agent" => "engine API with every call the agent makes",
                "engine-nosandbox" => "engine API, one container per pod, no sandbox",
                "swarm" => "Swarm, 1 node: service created → all replicas running",
                other => other,
            };
            rows.push(Row::new(&case, what, secs, "s"));
        }
        Ok(())
    }

    async fn cluster(&self, extra: &[&str]) -> anyhow::Result<Kube9d> {
        Kube9d::start(&self.bin_dir, extra, self.keep).await
    }

    /// Case 1: pods bound and Running per second, one Apply against 8 clients at once.
    pub async fn scheduling(&self, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        for &(nodes, count) in &self.sizes.scheduling {
            let k = self.cluster(&[]).await?;
            let _sim = k.simulate(&self.bin_dir, nodes, "sim-", 4000)?;
            let mut client = k.client().await?;
            let joined = wait_healthy(&mut client, "sim-", nodes, self.sizes.limit).await?;
            let case = format!("1 scheduling {count} pods / {nodes} nodes");
            rows.push(Row::new(
                &case,
                "nodes joined (all Healthy)",
                joined.as_secs_f64(),
                "s",
            ));
            for clients in [1usize, 8] {
                let label = format!("c{clients}");
                let mut conns = Vec::new();
                for _ in 0..clients {
                    conns.push(k.client().await?);
                }
                let all = pods(&label, count, 100);
                let per = count.div_ceil(clients);
                let tracker_client = k.client().await?;
                let t0 = Instant::now();
                let tracker = tokio::spawn(track(
                    tracker_client,
                    label.clone(),
                    count,
                    t0,
                    self.sizes.limit,
                    running,
                ));
                let mut applies = Vec::new();
                for (conn, part) in conns.into_iter().zip(all.chunks(per)) {
                    let part = part.to_vec();
                    let mut conn = conn;
                    applies.push(tokio::spawn(async move {
                        apply(&mut conn, part, APPLY_CHUNK).await
                    }));
                }
                for a in applies {
                    a.await??;
                }
                let applied = t0.elapsed();
                let (bound, run) = tracker.await??;
                let how = if clients == 1 {
                    format!("1 client (Apply of ≤{APPLY_CHUNK})")
                } else {
                    format!("{clients} clients")
                };
                let m = |what: &str| format!("{how}: {what}");
                rows.push(Row::new(
                    &case,
                    &m("apply returned"),
                    applied.as_secs_f64(),
                    "s",
                ));
                rows.push(Row::new(&case, &m("all bound"), bound.as_secs_f64(), "s"));
                rows.push(
                    Row::new(
                        &case,
                        &m("bound rate"),
                        count as f64 / bound.as_secs_f64(),
                        "pods/s",
                    )
                    .target(if nodes >= 5_000 {
                        "≥ 10,000 at 5,000 nodes"
                    } else {
                        ""
                    }),
                );
                rows.push(Row::new(&case, &m("all Running"), run.as_secs_f64(), "s"));
                rows.push(
                    Row::new(
                        &case,
                        &m("Running rate"),
                        count as f64 / run.as_secs_f64(),
                        "pods/s",
                    )
                    .target(if nodes == 1_000 {
                        "≥ 5,000 at 1,000 nodes"
                    } else {
                        ""
                    }),
                );
                let mut lat = start_latencies(&mut client, &label).await?;
                rows.extend(latency_rows(
                    &case,
                    &m("pod start"),
                    &mut lat,
                    "Kubernetes SLO: < 5,000",
                ));
                delete_all(&mut client).await?;
            }
        }
        Ok(())
    }

    /// Case 2: latency of single-object calls and lists while other clients create and
    /// delete pods.
    pub async fn churn(&self, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let s = &self.sizes;
        let k = self.cluster(&[]).await?;
        let _sim = k.simulate(&self.bin_dir, s.churn_nodes, "sim-", 4000)?;
        let mut client = k.client().await?;
        wait_healthy(&mut client, "sim-", s.churn_nodes, s.limit).await?;
        let case = format!(
            "2 API latency, {} pods / {} nodes, under churn",
            s.churn_pods, s.churn_nodes
        );
        let t0 = Instant::now();
        let tracker = tokio::spawn(track(
            k.client().await?,
            "base".into(),
            s.churn_pods,
            t0,
            s.limit,
            running,
        ));
        apply(&mut client, pods("base", s.churn_pods, 10), APPLY_CHUNK).await?;
        tracker.await??;

        // Churn: another client creates 50 pods and deletes them, over and over: first at a
        // set pace (2,000 pod changes a second, above kube-scheduler's pass mark), then as
        // fast as it can, which takes most of the two cores from kube9d and the probe.
        for pace in [Some(CHURN_PACE), None] {
            let case = match pace {
                Some(rate) => format!("{case} at {rate} pods/s"),
                None => format!("{case}, unbounded"),
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut churner = k.client().await?;
            let stop_churn = stop.clone();
            let churn = tokio::spawn(async move {
                let mut round = 0usize;
                let mut changed = 0usize;
                let start = Instant::now();
                // 100 changes per round.
                let mut tick = pace.map(|rate| {
                    tokio::time::interval(Duration::from_secs_f64(100.0 / rate as f64))
                });
                while !stop_churn.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(tick) = tick.as_mut() {
                        tick.tick().await;
                    }
                    let batch = pods(&format!("churn{round}"), 50, 10);
                    let names: Vec<String> = batch.iter().map(|p| p.name.clone()).collect();
                    churner
                        .apply(pb::ApplyRequest {
                            pods: batch,
                            ..Default::default()
                        })
                        .await?;
                    churner
                        .delete_pods(pb::DeletePodsRequest {
                            names,
                            ..Default::default()
                        })
                        .await?;
                    changed += 100;
                    round += 1;
                }
                anyhow::Ok(changed as f64 / start.elapsed().as_secs_f64())
            });

            let (mut apply_ms, mut get_ms, mut delete_ms, mut page_ms, mut full_ms) =
                (vec![], vec![], vec![], vec![], vec![]);
            let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
            let mut full_size = 0;
            for i in 0..s.churn_rounds {
                let name = format!("probe-{i}");
                let mut one = pods("probe", 1, 10);
                one[0].name = name.clone();
                let t = Instant::now();
                client
                    .apply(pb::ApplyRequest {
                        pods: one,
                        ..Default::default()
                    })
                    .await?;
                apply_ms.push(ms(t));
                let t = Instant::now();
                client
                    .get_pod(pb::GetPodRequest {
                        name: name.clone(),
                        ..Default::default()
                    })
                    .await?;
                get_ms.push(ms(t));
                let t = Instant::now();
                let page = client
                    .list_pods(pb::ListPodsRequest {
                        limit: 500,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                page_ms.push(ms(t));
                if page.pods.len() != 500 {
                    bail!("a page of 500 had {} pods", page.pods.len());
                }
                if i % 10 == 0 {
                    let t = Instant::now();
                    let all = client
                        .list_pods(pb::ListPodsRequest::default())
                        .await?
                        .into_inner();
                    full_ms.push(ms(t));
                    full_size = all.pods.len();
                }
                let t = Instant::now();
                client
                    .delete_pod(pb::DeletePodRequest {
                        name,
                        ..Default::default()
                    })
                    .await?;
                delete_ms.push(ms(t));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let churn_rate = churn.await??;
            rows.push(Row::new(
                &case,
                "churn by another client (apply + delete)",
                churn_rate,
                "pods/s",
            ));
            for (what, v, target) in [
                ("apply one pod", &mut apply_ms, "p99 < 10 ms"),
                ("get one pod", &mut get_ms, "p99 < 10 ms"),
                ("delete one pod", &mut delete_ms, "p99 < 10 ms"),
                ("list a page of 500", &mut page_ms, "p99 < 20 ms"),
            ] {
                rows.extend(latency_rows(&case, what, v, target));
            }
            rows.extend(latency_rows(
                &case,
                &format!("full list ({full_size} pods)"),
                &mut full_ms,
                "< 200 ms at 10,000 pods",
            ));
        }
        Ok(())
    }

    /// Case 3: kube9d's CPU and memory with nodes doing nothing but heartbeat.
    pub async fn heartbeats(&self, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let s = &self.sizes;
        let k = self.cluster(&[]).await?;
        let mut client = k.client().await?;
        let case = "3 heartbeat cost (1 Hz)";
        let mut sims = Vec::new();
        let mut total = 0;
        for (i, &target) in s.heartbeat_nodes.iter().enumerate() {
            let prefix = format!("hb{i}-");
            sims.push(k.simulate(&self.bin_dir, target - total, &prefix, 4000)?);
            total = target;
            wait_healthy(&mut client, "hb", total, s.limit).await?;
            // Let the joins' writes settle.
            tokio::time::sleep(s.heartbeat_window / 2).await;
            let sim_cpu = || -> anyhow::Result<Duration> {
                sims.iter()
                    .map(|sim| usage(sim.pid()).map(|u| u.cpu))
                    .sum::<anyhow::Result<Duration>>()
            };
            let (before, sim_before, t) = (usage(k.pid())?, sim_cpu()?, Instant::now());
            tokio::time::sleep(s.heartbeat_window).await;
            let (after, sim_after, wall) = (usage(k.pid())?, sim_cpu()?, t.elapsed());
            let share =
                |a: Duration, b: Duration| (a - b).as_secs_f64() / wall.as_secs_f64() * 100.0;
            let big = total >= 10_000;
            rows.push(
                Row::new(
                    case,
                    &format!("{total} nodes: kube9d CPU"),
                    share(after.cpu, before.cpu),
                    "% of a core",
                )
                .target(if big { "< 25" } else { "" }),
            );
            rows.push(
                Row::new(
                    case,
                    &format!("{total} nodes: kube9d RSS"),
                    after.rss_bytes as f64 / 1e6,
                    "MB",
                )
                .target(if big { "< 500" } else { "" }),
            );
            rows.push(Row::new(
                case,
                &format!("{total} nodes: simulator CPU"),
                share(sim_after, sim_before),
                "% of a core",
            ));
        }
        Ok(())
    }

    /// Case 4: kube9d's memory with many pods, while they are applied and after.
    pub async fn memory(&self, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let s = &self.sizes;
        let k = self.cluster(&[]).await?;
        let _sim = k.simulate(&self.bin_dir, s.memory_nodes, "sim-", 4000)?;
        let mut client = k.client().await?;
        wait_healthy(&mut client, "sim-", s.memory_nodes, s.limit).await?;
        tokio::time::sleep(s.rest).await;
        let base = usage(k.pid())?.rss_bytes;
        let case = format!("4 memory, {} nodes", s.memory_nodes);
        rows.push(Row::new(
            &case,
            "kube9d RSS, nodes only",
            base as f64 / 1e6,
            "MB",
        ));
        let mut have = 0;
        for (i, &target) in s.memory_pods.iter().enumerate() {
            let label = format!("m{i}");
            let add = target - have;
            let pid = k.pid();
            let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
            let sampler = {
                let (peak, sampling) = (peak.clone(), sampling.clone());
                tokio::spawn(async move {
                    while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                        if let Ok(u) = usage(pid) {
                            peak.fetch_max(u.rss_bytes, std::sync::atomic::Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                })
            };
            let t0 = Instant::now();
            let tracker = tokio::spawn(track(
                k.client().await?,
                label.clone(),
                add,
                t0,
                s.limit,
                running,
            ));
            apply(&mut client, pods(&label, add, 100), APPLY_CHUNK).await?;
            let (_, run) = tracker.await??;
            sampling.store(false, std::sync::atomic::Ordering::Relaxed);
            sampler.await?;
            have = target;
            tokio::time::sleep(s.rest).await;
            let rest = usage(k.pid())?.rss_bytes;
            let burst = peak.load(std::sync::atomic::Ordering::Relaxed).max(rest);
            let at = format!("{target} pods");
            rows.push(Row::new(
                &case,
                &format!("{at}: {add} applied, all Running after"),
                run.as_secs_f64(),
                "s",
            ));
            rows.push(
                Row::new(
                    &case,
                    &format!("{at}: RSS at rest"),
                    rest as f64 / 1e6,
                    "MB",
                )
                .target(if target >= 150_000 { "< 1,500" } else { "" }),
            );
            rows.push(
                Row::new(
                    &case,
                    &format!("{at}: RSS peak during the burst"),
                    burst as f64 / 1e6,
                    "MB",
                )
                .target("≤ 2× rest"),
            );
            rows.push(Row::new(
                &case,
                &format!("{at}: per pod at rest"),
                rest.saturating_sub(base) as f64 / target as f64,
                "bytes",
            ));
        }
        Ok(())
    }

    /// Case 5: a node holding many pods stops heartbeating; how long until they run elsewhere.
    pub async fn failover(&self, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let s = &self.sizes;
        const FENCE_MS: i64 = 3_000;
        let fence = FENCE_MS.to_string();
        // A silent node fails after 2 missed heartbeats (2 s), gets one recovery attempt
        // (0.1 s backoff, 0.5 s wait), is given up, and its pods move once its agent's fence
        // time has passed since its last heartbeat.
        let k = self
            .cluster(&[
                "--max-recovery-attempts",
                "1",
                "--recovery-timeout-ms",
                "500",
                "--recovery-backoff-ms",
                "100",
                "--node-fence-ms",
                &fence,
            ])
            .await?;
        let mut client = k.client().await?;
        let pod_cpu = 10;
        let _victim = k.simulate(
            &self.bin_dir,
            1,
            "victim-",
            s.failover_pods as i64 * pod_cpu + 1000,
        )?;
        wait_healthy(&mut client, "victim-", 1, s.limit).await?;
        let t0 = Instant::now();
        let tracker = tokio::spawn(track(
            k.client().await?,
            "f".into(),
            s.failover_pods,
            t0,
            s.limit,
            running,
        ));
        apply(
            &mut client,
            pods("f", s.failover_pods, pod_cpu),
            APPLY_CHUNK,
        )
        .await?;
        tracker.await??;
        let _spares = k.simulate(&self.bin_dir, s.failover_spares, "spare-", 4000)?;
        wait_healthy(&mut client, "spare-", s.failover_spares, s.limit).await?;
        let victim = "victim-1".to_string();
        let case = format!("5 failover, {} pods on one node", s.failover_pods);

        let t0 = Instant::now();
        let t0_ms = now_ms();
        client
            .simulate_node_failure(pb::SimulateNodeFailureRequest {
                name: victim.clone(),
                mode: pb::FailureMode::Heartbeat as i32,
                component: String::new(),
            })
            .await?;
        let away = victim.clone();
        let tracker = tokio::spawn(track(
            k.client().await?,
            "f".into(),
            s.failover_pods,
            t0,
            s.limit,
            move |p: &pb::Pod| p.phase() == PodPhase::Running && p.node != away,
        ));
        // Given up: permanently failed, and (a node kube9d cannot remove) its fence time past;
        // both on kube9d's clock, from its record and its events.
        let (_, moved) = tracker.await??;
        let node = client
            .get_node(pb::GetNodeRequest {
                name: victim.clone(),
            })
            .await?
            .into_inner();
        if node.status() != pb::NodeStatus::PermanentlyFailed {
            bail!("{victim} is {:?}, not given up", node.status());
        }
        let last_heartbeat_ms = node.last_heartbeat_ms;
        let given_up_at = client
            .list_events(pb::ListEventsRequest {
                object_kind: "Node".into(),
                object_name: victim.clone(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .events
            .iter()
            .filter(|e| e.reason == "NodePermanentlyFailed")
            .map(|e| e.time_ms)
            .max()
            .ok_or_else(|| anyhow::anyhow!("no NodePermanentlyFailed event for {victim}"))?;
        let moved_ms = t0_ms + moved.as_millis() as i64;
        let released_ms = given_up_at.max(last_heartbeat_ms + FENCE_MS);
        rows.push(Row::new(
            &case,
            "fault → given up",
            (given_up_at - t0_ms) as f64 / 1000.0,
            "s",
        ));
        rows.push(Row::new(
            &case,
            "fault → all Running elsewhere",
            moved.as_secs_f64(),
            "s",
        ));
        rows.push(
            Row::new(
                &case,
                "given up (and fence time past) → all Running elsewhere",
                (moved_ms - released_ms) as f64 / 1000.0,
                "s",
            )
            .target("< 2"),
        );
        Ok(())
    }

    /// Case 6: deleting many pods with the bulk RPC (answered once they are gone).
    pub async fn deletes(&self, rows: &mut Vec<Row>) -> anyhow::Result<()> {
        let s = &self.sizes;
        let k = self.cluster(&[]).await?;
        let _sim = k.simulate(&self.bin_dir, s.delete_nodes, "sim-", 40_000)?;
        let mut client = k.client().await?;
        wait_healthy(&mut client, "sim-", s.delete_nodes, s.limit).await?;
        let case = format!("6 delete (DeletePods, wait), {} nodes", s.delete_nodes);
        for (i, &count) in s.deletes.iter().enumerate() {
            let label = format!("d{i}");
            let t0 = Instant::now();
            let tracker = tokio::spawn(track(
                k.client().await?,
                label.clone(),
                count,
                t0,
                s.limit,
                running,
            ));
            apply(&mut client, pods(&label, count, 10), APPLY_CHUNK).await?;
            tracker.await??;
            let t = Instant::now();
            let deleted = delete_all(&mut client).await?;
            let took = t.elapsed();
            if deleted != count {
                bail!("deleted {deleted} pods, expected {count}");
            }
            rows.push(Row::new(
                &case,
                &format!("{count} pods gone"),
                took.as_secs_f64(),
                "s",
            ));
            rows.push(Row::new(
                &case,
                &format!("{count} pods rate"),
                count as f64 / took.as_secs_f64(),
                "pods/s",
            ));
        }
        Ok(())
    }
}
