//! The Docker container runtime against the real engine.
//!
//! Nothing can be pulled here (no registry), so the test images are built through the engine
//! from the static busybox: `kube9-test/busybox:1` (busybox as `/bin/*`) and
//! `kube9-test/echo:1` (with an ENTRYPOINT and a CMD, to check how `command` and `args`
//! replace them). The sandboxes run `kube9-test/pause:1`, built by the runtime itself from
//! the `kube9-node` binary of this build. Images stay for the next run; every container and
//! volume is labelled with a random cluster id and removed by a drop guard, even when a test
//! fails.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, RemoveVolumeOptions,
};
use bollard::Docker;
use futures::StreamExt;
use kube9_node::cri::docker::image::{
    build_image, ContextFile, LABEL_PAUSE_MODES, LABEL_PAUSE_VERSION, PAUSE_MODES,
};
use kube9_node::cri::{
    labels, spec, ContainerId, ContainerInfo, ContainerRuntime, ContainerState, DockerConfig,
    DockerRuntime, Error, Labels, PodMeta, PullPolicy, SandboxId,
};
use kube9_proto::pb;
use tokio::sync::OnceCell;

const BUSYBOX: &str = "kube9-test/busybox:1";
const ECHO: &str = "kube9-test/echo:1";
const PAUSE: &str = "kube9-test/pause:1";
/// How long any wait for the engine may take.
const DEADLINE: Duration = Duration::from_secs(15);

fn random_hex() -> String {
    format!("{:016x}", RandomState::new().hash_one(Instant::now()))
}

/// The engine, with the test images present (built once per test run, by whichever test
/// gets there first; the others wait).
async fn engine() -> Docker {
    static IMAGES: OnceCell<()> = OnceCell::const_new();
    let docker = Docker::connect_with_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .expect("a Docker engine must be running for these tests");
    IMAGES
        .get_or_init(|| async {
            let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
            let files = [ContextFile {
                name: "busybox",
                data: &busybox,
                mode: 0o755,
            }];
            let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\n\
                              RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
            build_if_missing(&docker, BUSYBOX, dockerfile, &files).await;
            let dockerfile =
                format!("FROM {BUSYBOX}\nENTRYPOINT [\"echo\", \"entry\"]\nCMD [\"image-cmd\"]\n");
            build_if_missing(&docker, ECHO, &dockerfile, &[]).await;
        })
        .await;
    docker
}

async fn build_if_missing(docker: &Docker, tag: &str, dockerfile: &str, files: &[ContextFile<'_>]) {
    if docker.inspect_image(tag).await.is_err() {
        build_image(docker, tag, dockerfile, files, &HashMap::new())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// One test's runtime and cluster id; dropping it removes every container and volume
/// labelled with that cluster (and the images listed in `images`).
struct Fixture {
    runtime: DockerRuntime,
    cluster: String,
    images: Vec<String>,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_pause(PAUSE).await
    }

    async fn with_pause(pause_image: &str) -> Self {
        engine().await;
        let config = DockerConfig {
            pause_image: pause_image.to_string(),
            pause_program: PathBuf::from(env!("CARGO_BIN_EXE_kube9-node")),
            ..Default::default()
        };
        Fixture {
            runtime: DockerRuntime::connect(config).await.unwrap(),
            cluster: format!("k9test-{}", random_hex()),
            images: Vec::new(),
        }
    }

    /// Starts a pod (its emptyDirs and sandbox) from a spec.
    async fn pod(&self, mut pod: pb::Pod) -> TestPod {
        pod.uid = random_hex();
        let meta = spec::pod_meta(&pod, &self.cluster, "node-1");
        for volume in spec::engine_volumes(&pod) {
            self.runtime.create_empty_dir(&meta, &volume).await.unwrap();
        }
        let config = spec::sandbox_config(&meta, &pod, 0, None);
        let sandbox = self.runtime.run_sandbox(&config).await.unwrap();
        for (volume, files) in spec::volume_files(&meta, &pod).unwrap() {
            (self.runtime.write_files(&sandbox, &volume, &files).await).unwrap();
        }
        TestPod {
            runtime: self.runtime.clone(),
            meta,
            pod,
            sandbox,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let cluster = self.cluster.clone();
        let images = std::mem::take(&mut self.images);
        // The test's runtime may be gone (a panic): clean up on a runtime of our own.
        let cleanup = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(remove_everything(&cluster, &images))
        });
        if let Err(panic) = cleanup.join() {
            eprintln!("cleanup of {} failed: {panic:?}", self.cluster);
        }
    }
}

async fn remove_everything(cluster: &str, images: &[String]) {
    let docker = Docker::connect_with_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let filters = HashMap::from([("label", vec![format!("{}={cluster}", labels::CLUSTER)])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for c in docker.list_containers(Some(options)).await.unwrap() {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        let _ = docker.remove_container(&c.id.unwrap(), Some(options)).await;
    }
    let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
    let volumes = docker.list_volumes(Some(options)).await.unwrap();
    for v in volumes.volumes.unwrap_or_default() {
        let _ = docker
            .remove_volume(&v.name, None::<RemoveVolumeOptions>)
            .await;
    }
    for image in images {
        let options = RemoveImageOptionsBuilder::new().force(true).build();
        let _ = docker.remove_image(image, Some(options), None).await;
    }
}

/// A running pod sandbox.
struct TestPod {
    runtime: DockerRuntime,
    meta: PodMeta,
    pod: pb::Pod,
    sandbox: SandboxId,
}

impl TestPod {
    /// Creates and starts `container` (from busybox unless it names an image).
    async fn run(&self, mut container: pb::Container) -> ContainerId {
        if container.image.is_empty() {
            container.image = BUSYBOX.to_string();
        }
        let image = self
            .runtime
            .ensure_image(&container.image, PullPolicy::Never)
            .await
            .unwrap();
        let mut config =
            spec::container_config(&self.meta, &self.pod, &container, &image.id, 0).unwrap();
        config.security.image_user = image.user.clone();
        let id = self
            .runtime
            .create_container(&self.sandbox, &config)
            .await
            .unwrap();
        self.runtime.start_container(&id).await.unwrap();
        id
    }

    /// Waits for `id` to exit and returns how it ended.
    async fn exited(&self, id: &ContainerId) -> ContainerInfo {
        tokio::time::timeout(DEADLINE, self.runtime.wait_container(id))
            .await
            .expect("the container did not exit in time")
            .unwrap()
    }

    /// Waits for `id` to exit and returns its whole log.
    async fn output(&self, id: &ContainerId) -> String {
        let info = self.exited(id).await;
        assert_eq!(info.state, ContainerState::Exited);
        logs(&self.runtime, id, None).await
    }

    async fn exec(&self, id: &ContainerId, script: &str) -> (String, i32) {
        let command = ["sh", "-c", script].map(String::from);
        let out = self.runtime.exec(id, &command).await.unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.exit_code,
        )
    }
}

async fn logs(runtime: &DockerRuntime, id: &ContainerId, tail: Option<u32>) -> String {
    let mut stream = runtime.container_logs(id, tail, false).await.unwrap();
    let mut text = Vec::new();
    while let Some(chunk) = stream.next().await {
        text.extend(chunk.unwrap());
    }
    String::from_utf8(text).unwrap()
}

fn shell(name: &str, script: &str) -> pb::Container {
    pb::Container {
        name: name.into(),
        command: vec!["sh".into(), "-c".into()],
        args: vec![script.into()],
        ..Default::default()
    }
}

fn pod_named(name: &str) -> pb::Pod {
    pb::Pod {
        name: name.into(),
        ..Default::default()
    }
}

/// Polls `check` until it returns something, or panics after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_missing_image_under_never_is_err_image_never_pull() {
    let fx = Fixture::new().await;
    let image = format!("kube9-test/missing-{}:1", random_hex());
    let err = fx
        .runtime
        .ensure_image(&image, PullPolicy::Never)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ImageNeverPull { image: i } if *i == image),
        "{err}"
    );
}

#[tokio::test]
async fn a_present_image_under_if_not_present_or_never_is_used_without_a_pull() {
    let fx = Fixture::new().await;
    // No registry here: any pull would fail, so success means no pull was tried.
    for policy in [PullPolicy::IfNotPresent, PullPolicy::Never] {
        let image = fx.runtime.ensure_image(BUSYBOX, policy).await.unwrap();
        assert!(!image.pulled);
        assert!(image.id.starts_with("sha256:"), "{}", image.id);
    }
}

#[tokio::test]
async fn a_failed_pull_carries_the_engines_message() {
    let fx = Fixture::new().await;
    let image = format!("kube9-test/missing-{}:1", random_hex());
    let err = fx
        .runtime
        .ensure_image(&image, PullPolicy::IfNotPresent)
        .await
        .unwrap_err();
    let Error::ImagePull {
        image: failed,
        message,
    } = &err
    else {
        panic!("expected ImagePull, got {err:?}");
    };
    assert_eq!(failed, &image);
    assert!(!message.is_empty());
    assert!(!message.contains("Docker responded"), "{message}");
    // Always pulls even a present image, and there is no registry to pull from.
    let err = fx
        .runtime
        .ensure_image(BUSYBOX, PullPolicy::Always)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ImagePull { .. }), "{err}");
}

#[tokio::test]
async fn command_args_and_env_reach_the_process_with_var_expansion() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("env")).await;
    let mut container = shell(
        "app",
        // Single quotes: what is left of $(...) after expansion must not reach the shell as
        // command substitution.
        "echo '$(GREETING) | $$(GREETING) | $(UNKNOWN)'; env | grep -E '^(GREETING|WHO)=' | sort; pwd",
    );
    container.env = vec![
        pb::EnvVar {
            name: "WHO".into(),
            value: "kube9".into(),
            value_from: None,
        },
        pb::EnvVar {
            name: "GREETING".into(),
            value: "hello $(WHO)".into(),
            value_from: None,
        },
    ];
    container.working_dir = "/tmp".into();
    let id = pod.run(container).await;
    assert_eq!(
        pod.output(&id).await,
        "hello kube9 | $(GREETING) | $(UNKNOWN)\nGREETING=hello kube9\nWHO=kube9\n/tmp\n"
    );
}

#[tokio::test]
async fn command_replaces_the_entrypoint_and_args_replace_the_cmd() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("entry")).await;
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases = [
        ("neither", words(&[]), words(&[]), "entry image-cmd\n"),
        ("args", words(&[]), words(&["a"]), "entry a\n"),
        ("command", words(&["echo", "cmd"]), words(&[]), "cmd\n"),
        ("both", words(&["echo", "cmd"]), words(&["a"]), "cmd a\n"),
    ];
    for (name, command, args, expected) in cases {
        let id = pod
            .run(pb::Container {
                name: name.into(),
                image: ECHO.into(),
                command,
                args,
                ..Default::default()
            })
            .await;
        assert_eq!(pod.output(&id).await, expected, "case {name}");
    }
}

#[tokio::test]
async fn containers_of_a_pod_talk_over_localhost_and_share_the_pod_ip() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("web")).await;
    let server = pod
        .run(shell(
            "server",
            "mkdir -p /www && echo hello-from-server > /www/index.html && exec httpd -f -p 8080 -h /www",
        ))
        .await;
    let client = pod.run(shell("client", "exec sleep 60")).await;
    let body = eventually("the server to answer on localhost", || async {
        let (out, code) = pod
            .exec(&client, "wget -q -O - http://127.0.0.1:8080/")
            .await;
        (code == 0).then_some(out)
    })
    .await;
    assert_eq!(body, "hello-from-server\n");
    let sandbox = fx.runtime.inspect_sandbox(&pod.sandbox).await.unwrap();
    let ip = sandbox.ip.expect("the sandbox has an address");
    let (addresses, _) = pod.exec(&server, "ip -4 addr show eth0").await;
    assert!(addresses.contains(&format!("inet {ip}/")), "{addresses}");
    let (hostname, _) = pod.exec(&client, "hostname").await;
    assert_eq!(hostname, "web\n");
}

#[tokio::test]
async fn a_memory_limit_is_set_and_a_memory_hog_is_oom_killed() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("hog")).await;
    let mut hog = shell("hog", "exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    hog.memory_limit_bytes = 16 << 20;
    let id = pod.run(hog).await;
    let inspected = fx
        .runtime
        .docker()
        .inspect_container(id.as_str(), None)
        .await
        .unwrap();
    assert_eq!(inspected.host_config.unwrap().memory, Some(16 << 20));
    let info = pod.exited(&id).await;
    assert!(info.oom_killed, "{info:?}");
    assert_eq!(info.exit_code, Some(137));
    assert!(info.finished_ms >= info.started_ms && info.started_ms.is_some());
}

#[tokio::test]
async fn a_container_the_runtime_stops_with_sigkill_under_a_memory_limit_is_not_oom_killed() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("stubborn")).await;
    let mut app = shell("app", "trap '' TERM; while true; do sleep 1; done");
    app.memory_limit_bytes = 32 << 20;
    let id = pod.run(app).await;
    fx.runtime
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    let info = pod.exited(&id).await;
    assert_eq!(info.exit_code, Some(137), "{info:?}");
    assert!(!info.oom_killed, "{info:?}");
}

#[tokio::test]
async fn a_cpu_limit_shows_in_the_containers_cgroup() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("cpu")).await;
    let mut app = shell("app", "exec sleep 60");
    app.cpu_limit_millis = 500;
    let id = pod.run(app).await;
    // cgroup v2 has cpu.max ("50000 100000"); v1 (this machine) cpu.cfs_quota_us.
    let (quota, code) = pod
        .exec(
            &id,
            "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        )
        .await;
    assert_eq!(code, 0);
    assert!(quota.starts_with("50000"), "{quota}");
}

#[tokio::test]
async fn empty_dirs_are_shared_between_containers_on_disk_and_in_memory() {
    let fx = Fixture::new().await;
    let mut spec = pod_named("share");
    spec.volumes = vec![
        pb::Volume {
            name: "scratch".into(),
            kind: "emptyDir".into(),
            ..Default::default()
        },
        pb::Volume {
            name: "mem".into(),
            kind: "emptyDir".into(),
            medium: "Memory".into(),
            size_bytes: 1 << 20,
            ..Default::default()
        },
    ];
    let pod = fx.pod(spec).await;
    let mount = |name: &str, path: &str, sub_path: &str| pb::VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        sub_path: sub_path.into(),
        ..Default::default()
    };
    let mut writer = shell(
        "writer",
        "echo on-disk > /scratch/a && mkdir -p /mem/sub && echo in-memory > /mem/sub/b && exec sleep 60",
    );
    writer.volume_mounts = vec![mount("scratch", "/scratch", ""), mount("mem", "/mem", "")];
    let writer = pod.run(writer).await;
    let mut reader = shell("reader", "exec sleep 60");
    reader.volume_mounts = vec![mount("scratch", "/data", ""), mount("mem", "/sub", "sub")];
    let reader = pod.run(reader).await;
    let read = eventually("the reader to see both files", || async {
        let (out, code) = pod.exec(&reader, "cat /data/a /sub/b").await;
        (code == 0).then_some(out)
    })
    .await;
    assert_eq!(read, "on-disk\nin-memory\n");
    let (filesystem, _) = pod.exec(&writer, "df /mem | tail -n 1").await;
    assert!(filesystem.starts_with("tmpfs"), "{filesystem}");
    let volumes = fx
        .runtime
        .list_volumes(&Labels::from([(
            labels::POD_UID.into(),
            pod.meta.uid.clone(),
        )]))
        .await
        .unwrap();
    assert_eq!(volumes.len(), 2);
}

fn volume_file(path: &str, content: &str, mode: u32) -> pb::VolumeFile {
    pb::VolumeFile {
        path: path.into(),
        content: content.as_bytes().to_vec(),
        mode,
    }
}

fn files_volume(name: &str, kind: &str, files: Vec<pb::VolumeFile>) -> pb::Volume {
    pb::Volume {
        name: name.into(),
        kind: kind.into(),
        source: name.into(),
        files,
        ..Default::default()
    }
}

#[tokio::test]
async fn files_are_written_only_into_a_volume_the_sandbox_holds_and_replace_old_ones() {
    let fx = Fixture::new().await;
    let mut spec = pod_named("files");
    spec.volumes = vec![files_volume(
        "cfg",
        "configMap",
        vec![volume_file("a/b.conf", "one", 0o600)],
    )];
    let pod = fx.pod(spec).await;
    let volume = labels::volume_name(&pod.meta, "cfg");
    let mut app = shell("app", "exec sleep 60");
    app.volume_mounts = vec![pb::VolumeMount {
        name: "cfg".into(),
        mount_path: "/cfg".into(),
        ..Default::default()
    }];
    let app = pod.run(app).await;
    let file = |content: &str, mode| kube9_node::cri::FileToWrite {
        path: "a/b.conf".into(),
        content: content.as_bytes().to_vec(),
        mode,
    };
    let (read, _) = pod
        .exec(&app, "cat /cfg/a/b.conf; stat -c ' %a' /cfg/a/b.conf")
        .await;
    assert_eq!(read, "one 600\n");
    fx.runtime
        .write_files(&pod.sandbox, &volume, &[file("two", 0o644)])
        .await
        .unwrap();
    let (read, _) = pod
        .exec(&app, "cat /cfg/a/b.conf; stat -c ' %a' /cfg/a/b.conf")
        .await;
    assert_eq!(read, "two 644\n");
    let elsewhere = fx
        .runtime
        .write_files(&pod.sandbox, "k9v_not_held", &[file("x", 0o644)])
        .await
        .unwrap_err();
    assert!(
        matches!(elsewhere, Error::InvalidConfig { .. }),
        "{elsewhere}"
    );
}

#[tokio::test]
async fn exec_returns_stdout_stderr_and_the_exit_code() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("exec")).await;
    let id = pod.run(shell("app", "exec sleep 60")).await;
    let command = ["sh", "-c", "echo out; echo err >&2; exit 3"].map(String::from);
    let out = fx.runtime.exec(&id, &command).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(out.exit_code, 3);
    let missing = fx
        .runtime
        .exec(&id, &["/no/such/program".to_string()])
        .await
        .unwrap();
    assert!(
        missing.exit_code == 126 || missing.exit_code == 127,
        "{missing:?}"
    );
}

#[tokio::test]
async fn logs_follow_a_running_container_and_tail_the_last_lines() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("logs")).await;
    let id = pod
        .run(shell(
            "app",
            "echo one; sleep 0.5; echo two >&2; sleep 0.5; echo three",
        ))
        .await;
    let mut stream = fx.runtime.container_logs(&id, None, true).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first, b"one\n");
    let info = fx.runtime.inspect_container(&id).await.unwrap();
    assert_eq!(
        info.state,
        ContainerState::Running,
        "the log came while running"
    );
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(DEADLINE, stream.next()).await.unwrap() {
        rest.extend(chunk.unwrap());
    }
    assert_eq!(String::from_utf8(rest).unwrap(), "two\nthree\n");
    assert_eq!(logs(&fx.runtime, &id, Some(1)).await, "three\n");
}

#[tokio::test]
async fn list_by_label_finds_the_pods_containers_and_its_sandbox() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("listed")).await;
    let other = fx.pod(pod_named("other")).await;
    let app = pod.run(shell("app", "exec sleep 60")).await;
    let side = pod.run(shell("side", "exit 0")).await;
    other.run(shell("app", "exec sleep 60")).await;
    let selector = Labels::from([
        (labels::CLUSTER.into(), fx.cluster.clone()),
        (labels::POD_UID.into(), pod.meta.uid.clone()),
    ]);
    let mut found = fx.runtime.list_containers(&selector).await.unwrap();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<_> = found.iter().map(|c| c.container_name().unwrap()).collect();
    assert_eq!(names, ["POD", "app", "side"]);
    assert!(found[0].is_sandbox() && found[0].id.as_str() == pod.sandbox.as_str());
    assert_eq!(found[1].id, app);
    assert_eq!(found[1].sandbox_id(), Some(pod.sandbox.clone()));
    assert_eq!(found[1].pod(), Some(pod.meta.clone()));
    assert_eq!(found[1].attempt(), Some(0));
    assert_eq!(found[2].id, side);
    let whole_cluster = Labels::from([(labels::CLUSTER.into(), fx.cluster.clone())]);
    assert_eq!(
        fx.runtime
            .list_containers(&whole_cluster)
            .await
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn kill_term_1_in_a_container_ends_only_that_container() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("kill")).await;
    let victim = pod
        .run(shell(
            "victim",
            "trap 'exit 7' TERM; while true; do sleep 0.1; done",
        ))
        .await;
    let bystander = pod.run(shell("bystander", "exec sleep 60")).await;
    pod.exec(&victim, "kill -TERM 1").await;
    let ended = pod.exited(&victim).await;
    assert_eq!(ended.exit_code, Some(7));
    let still = fx.runtime.inspect_container(&bystander).await.unwrap();
    assert_eq!(still.state, ContainerState::Running);
    let sandbox = fx.runtime.inspect_sandbox(&pod.sandbox).await.unwrap();
    assert_eq!(sandbox.container.state, ContainerState::Running);
}

#[tokio::test]
async fn removing_a_sandbox_removes_its_containers_and_stop_remove_are_idempotent() {
    let fx = Fixture::new().await;
    let pod = fx.pod(pod_named("gone")).await;
    let app = pod.run(shell("app", "exec sleep 60")).await;
    fx.runtime
        .stop_sandbox(&pod.sandbox, Duration::from_secs(1))
        .await
        .unwrap();
    let stopped = fx.runtime.inspect_container(&app).await.unwrap();
    assert_eq!(stopped.state, ContainerState::Exited);
    fx.runtime.remove_sandbox(&pod.sandbox).await.unwrap();
    let err = fx.runtime.inspect_container(&app).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    fx.runtime
        .stop_sandbox(&pod.sandbox, Duration::ZERO)
        .await
        .unwrap();
    fx.runtime.remove_sandbox(&pod.sandbox).await.unwrap();
    fx.runtime.remove_container(&app).await.unwrap();
    fx.runtime
        .remove_volume("k9v_no_such_volume")
        .await
        .unwrap();
}

#[tokio::test]
async fn the_pause_image_is_built_when_missing_and_pause_exits_0_on_sigterm() {
    let tag = format!("kube9-test/pause:{}", random_hex());
    let mut fx = Fixture::with_pause(&tag).await;
    fx.images.push(tag.clone());
    let pod = fx.pod(pod_named("paused")).await;
    let image = fx.runtime.docker().inspect_image(&tag).await.unwrap();
    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels[LABEL_PAUSE_VERSION], env!("CARGO_PKG_VERSION"));
    assert_eq!(labels[LABEL_PAUSE_MODES], PAUSE_MODES);
    // A signal that reaches PID 1 before it set itself up is dropped (PID 1 ignores what it
    // has no handler for): stop it only once pause waits for signals.
    let pid = fx
        .runtime
        .inspect_sandbox(&pod.sandbox)
        .await
        .unwrap()
        .container
        .pid
        .expect("pause runs");
    eventually("pause to wait for signals", || async {
        waits_for_signals(pid).then_some(())
    })
    .await;
    fx.runtime
        .stop_sandbox(&pod.sandbox, Duration::from_secs(10))
        .await
        .unwrap();
    // Exit 0, not the SIGKILL the engine sends after the grace period (137): pause ended on
    // SIGTERM (no timing asserted: a loaded machine may take a while to get there).
    let sandbox = fx.runtime.inspect_sandbox(&pod.sandbox).await.unwrap();
    assert_eq!(
        sandbox.container.exit_code,
        Some(0),
        "pause ignored SIGTERM"
    );
    assert_eq!(sandbox.ip, None);
}

#[tokio::test]
async fn a_pause_image_built_without_the_modes_the_agent_uses_is_built_again() {
    let tag = format!("kube9-test/pause:{}", random_hex());
    let mut fx = Fixture::with_pause(&tag).await;
    fx.images.push(tag.clone());
    // As an agent from before `du` left it: the pause mode only (here: no label at all).
    let dockerfile = format!("FROM {BUSYBOX}\nENTRYPOINT [\"sleep\", \"1000\"]\n");
    build_image(fx.runtime.docker(), &tag, &dockerfile, &[], &HashMap::new())
        .await
        .unwrap();
    let pod = fx.pod(pod_named("rebuilt")).await;
    let image = fx.runtime.docker().inspect_image(&tag).await.unwrap();
    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(
        labels.get(LABEL_PAUSE_MODES).map(String::as_str),
        Some(PAUSE_MODES)
    );
    let used = fx.runtime.volume_usage(&pod.sandbox, &[]).await.unwrap();
    assert!(used.is_empty());
}

#[tokio::test]
async fn volume_usage_is_measured_in_the_sandbox() {
    let fx = Fixture::new().await;
    let mut spec = pod_named("measured");
    spec.volumes = ["full", "empty"]
        .map(|name| pb::Volume {
            name: name.into(),
            kind: "emptyDir".into(),
            size_bytes: 1 << 20,
            ..Default::default()
        })
        .to_vec();
    let pod = fx.pod(spec).await;
    let mut writer = shell(
        "writer",
        "mkdir -p /full/sub && dd if=/dev/zero of=/full/sub/f bs=1024 count=3072 && \
         ln /full/sub/f /full/same && ln -s /full/sub/f /full/link && \
         echo -n 12345 > /full/g && exec sleep 60",
    );
    writer.volume_mounts = vec![pb::VolumeMount {
        name: "full".into(),
        mount_path: "/full".into(),
        ..Default::default()
    }];
    pod.run(writer).await;
    let volumes = ["full", "empty"].map(|v| labels::volume_name(&pod.meta, v));
    let used = eventually("the files written", || async {
        let used = fx
            .runtime
            .volume_usage(&pod.sandbox, &volumes)
            .await
            .unwrap();
        (used[0] == (3 << 20) + 5).then_some(used)
    })
    .await;
    assert_eq!(used, [(3 << 20) + 5, 0]);
    let err = fx
        .runtime
        .volume_usage(&pod.sandbox, &["k9v_no_such_volume".to_string()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("k9v_no_such_volume"), "{err}");
}

#[test]
fn the_du_mode_prints_one_line_per_path_and_fails_on_a_missing_one() {
    let dir = std::env::temp_dir().join(format!("kube9-du-bin-{}", random_hex()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/f"), vec![0u8; 4096]).unwrap();
    let du = |paths: &[&std::path::Path]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kube9-node"))
            .arg("du")
            .args(paths)
            .output()
            .unwrap()
    };
    let out = du(&[&dir, &dir.join("sub/f")]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("4096\t{}\n4096\t{}/sub/f\n", dir.display(), dir.display())
    );
    let missing = dir.join("missing");
    let out = du(&[&missing, &dir]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("4096\t{}\n", dir.display())
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_pause_process_exits_0_on_sigterm() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kube9-node"))
        .arg("pause")
        .spawn()
        .unwrap();
    // A SIGTERM before pause blocks it would kill the process (not exit 0): wait until it
    // sits in rt_sigtimedwait (syscall 128 on x86_64). /proc's SigBlk does not show it: the
    // kernel unblocks the awaited signals for the duration of the wait.
    let syscall_file = format!("/proc/{}/syscall", child.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(&syscall_file).is_ok_and(|s| s.starts_with("128 ")) {
        assert!(Instant::now() < deadline, "pause never waited for signals");
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("pause did not exit on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

// ----------------------------------------------------------------------------------------------
// The agent's supervisor with the Docker backend: the pod lifecycle over real containers.
// ----------------------------------------------------------------------------------------------

mod supervised {
    use std::sync::Arc;

    use kube9_node::containers::{Supervisor, SupervisorConfig, DEFAULT_GRACE};
    use kube9_node::kubelet::policy::Backoff;
    use kube9_proto::pb::{self, ContainerState, PodPhase};
    use tokio::sync::mpsc;

    use super::*;

    fn supervisor(fx: &Fixture) -> (Supervisor, mpsc::UnboundedReceiver<pb::PodStatus>) {
        let dir = std::env::temp_dir().join(format!("kube9-sup-{}", random_hex()));
        let (supervisor, events) = Supervisor::new(SupervisorConfig {
            state_dir: dir,
            node_name: "node-1".into(),
            standin_program: PathBuf::from("/nonexistent"),
            engine: Some(Arc::new(fx.runtime.clone())),
            cluster_id: fx.cluster.clone(),
            pod_network: None,
            eviction_interval: Duration::from_millis(300),
            log_limits: Default::default(),
        });
        supervisor.set_backoff(Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(200),
            reset: Duration::from_secs(600),
        });
        (supervisor, events)
    }

    fn pod(name: &str, policy: &str, containers: Vec<pb::Container>) -> pb::Pod {
        pb::Pod {
            name: name.into(),
            uid: random_hex(),
            restart_policy: policy.into(),
            containers,
            ..Default::default()
        }
    }

    fn image(mut c: pb::Container, image: &str, policy: &str) -> pb::Container {
        c.image = image.into();
        c.image_pull_policy = policy.into();
        c
    }

    async fn status_where(
        events: &mut mpsc::UnboundedReceiver<pb::PodStatus>,
        pred: impl Fn(&pb::PodStatus) -> bool,
    ) -> pb::PodStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, events.recv()).await {
                Ok(Some(s)) if pred(&s) => return s,
                Ok(Some(_)) => {}
                other => panic!("no matching status in time: {other:?}"),
            }
        }
    }

    async fn pod_containers(fx: &Fixture, uid: &str) -> usize {
        let filters = HashMap::from([("label", vec![format!("{}={uid}", labels::POD_UID)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        fx.runtime
            .docker()
            .list_containers(Some(options))
            .await
            .unwrap()
            .len()
    }

    #[tokio::test]
    async fn a_pod_runs_from_its_image_restarts_and_keeps_its_previous_run() {
        let fx = Fixture::new().await;
        let (supervisor, mut events) = supervisor(&fx);
        let spec = pod(
            "crashy",
            "Always",
            vec![image(
                shell("main", "echo run $HOSTNAME; exit 3"),
                BUSYBOX,
                "Never",
            )],
        );
        let uid = spec.uid.clone();
        supervisor.run_pod(spec);
        let looping = status_where(&mut events, |s| {
            s.containers[0].restarts >= 1 && s.containers[0].reason == "CrashLoopBackOff"
        })
        .await;
        assert!(!looping.pod_ip.is_empty(), "the pod has an IP: {looping:?}");
        let last = looping.containers[0].last_state.clone().unwrap();
        assert_eq!((last.exit_code, last.reason.as_str()), (3, "Error"));
        assert!(!looping.containers[0].container_id.starts_with("pid://"));
        let previous = supervisor.fetch_logs("crashy", "", 0, true).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&previous), "run crashy\n");
        // A sandbox, the current run and the previous one: never more.
        assert!(pod_containers(&fx, &uid).await <= 3);

        supervisor.delete_pod("crashy", "", DEFAULT_GRACE).await;
        assert_eq!(
            pod_containers(&fx, &uid).await,
            0,
            "deletion removes them all"
        );
    }

    #[tokio::test]
    async fn a_missing_image_waits_in_err_image_pull_then_image_pull_back_off() {
        let fx = Fixture::new().await;
        let (supervisor, mut events) = supervisor(&fx);
        let missing = format!("kube9-test/missing-{}:1", random_hex());
        supervisor.run_pod(pod(
            "nopull",
            "Always",
            vec![image(shell("main", "true"), &missing, "IfNotPresent")],
        ));
        let pulling = status_where(&mut events, |s| s.containers[0].reason == "ErrImagePull").await;
        assert!(
            pulling.containers[0].message.contains(&missing),
            "{pulling:?}"
        );
        assert_eq!(pulling.status_reason, "ErrImagePull");
        let backing_off = status_where(&mut events, |s| {
            s.containers[0].reason == "ImagePullBackOff"
        })
        .await;
        assert_eq!(backing_off.containers[0].state(), ContainerState::Waiting);
        supervisor.delete_pod("nopull", "", DEFAULT_GRACE).await;
    }

    #[tokio::test]
    async fn a_container_over_its_memory_limit_ends_oom_killed() {
        let fx = Fixture::new().await;
        let (supervisor, mut events) = supervisor(&fx);
        let mut hog = image(
            shell("hog", "exec dd if=/dev/zero of=/dev/null bs=64M count=1"),
            BUSYBOX,
            "Never",
        );
        hog.memory_limit_bytes = 16 << 20;
        supervisor.run_pod(pod("hog", "Never", vec![hog]));
        let done = status_where(&mut events, |s| s.phase() == PodPhase::Failed).await;
        assert_eq!(done.containers[0].reason, "OOMKilled");
        assert_eq!(done.status_reason, "OOMKilled");
        supervisor.delete_pod("hog", "", DEFAULT_GRACE).await;
    }

    fn mount(name: &str, path: &str, sub_path: &str) -> pb::VolumeMount {
        pb::VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            sub_path: sub_path.into(),
            ..Default::default()
        }
    }

    /// A secret volume (`username`, `db/password` 0400), a configMap volume (`app.conf`) and
    /// an optional configMap volume whose object is missing (no files).
    fn volumes_with_files() -> Vec<pb::Volume> {
        vec![
            files_volume(
                "creds",
                "secret",
                vec![
                    volume_file("username", "admin", 0o644),
                    volume_file("db/password", "s3cr3t-value", 0o400),
                ],
            ),
            files_volume(
                "settings",
                "configMap",
                vec![volume_file("app.conf", "level=debug\n", 0o644)],
            ),
            pb::Volume {
                optional: true,
                ..files_volume("missing", "configMap", vec![])
            },
        ]
    }

    #[tokio::test]
    async fn config_map_and_secret_volumes_are_read_only_files_and_secrets_live_on_tmpfs() {
        let fx = Fixture::new().await;
        let (supervisor, mut events) = supervisor(&fx);
        let mut app = image(
            shell(
                "app",
                "cat /etc/secret/username; echo; cat /etc/secret/db/password; echo; \
                 stat -c %a /etc/secret/db/password; ls -la /etc/config; cat /etc/app.conf; \
                 ls -A /etc/missing | wc -l; mount | grep /etc/secret; \
                 touch /etc/config/x 2>&1 || echo readonly; touch /etc/secret/db/x 2>&1 || echo readonly",
            ),
            BUSYBOX,
            "Never",
        );
        app.volume_mounts = vec![
            mount("creds", "/etc/secret", ""),
            mount("settings", "/etc/config", ""),
            mount("settings", "/etc/app.conf", "app.conf"),
            mount("missing", "/etc/missing", ""),
        ];
        let mut spec = pod("files", "Never", vec![app]);
        spec.volumes = volumes_with_files();
        let uid = spec.uid.clone();
        supervisor.run_pod(spec);
        let done = status_where(&mut events, |s| {
            matches!(s.phase(), PodPhase::Succeeded | PodPhase::Failed)
        })
        .await;
        let out = supervisor.fetch_logs("files", "app", 0, false).await;
        let out = String::from_utf8_lossy(&out.unwrap()).into_owned();
        assert_eq!(done.phase(), PodPhase::Succeeded, "{done:?}\n{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[..3], ["admin", "s3cr3t-value", "400"], "{out}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("-rw-r--r--") && l.ends_with(" app.conf")),
            "{out}"
        );
        assert!(out.contains("\nlevel=debug\n0\n"), "{out}");
        let secret_mount = lines
            .iter()
            .find(|l| l.contains(" /etc/secret "))
            .unwrap_or_else(|| panic!("no /etc/secret mount: {out}"));
        assert!(
            secret_mount.starts_with("tmpfs on /etc/secret type tmpfs (ro,"),
            "{secret_mount}"
        );
        assert_eq!(
            lines[lines.len() - 4..],
            [
                "touch: /etc/config/x: Read-only file system",
                "readonly",
                "touch: /etc/secret/db/x: Read-only file system",
                "readonly",
            ],
            "{out}"
        );

        // Every volume is the pod's, and goes with it.
        let selector = Labels::from([(labels::POD_UID.into(), uid.clone())]);
        let volumes = fx.runtime.list_volumes(&selector).await.unwrap();
        assert_eq!(volumes.len(), 3, "{volumes:?}");
        supervisor.delete_pod("files", "", DEFAULT_GRACE).await;
        assert!(fx.runtime.list_volumes(&selector).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn exec_and_logs_reach_the_running_container() {
        let fx = Fixture::new().await;
        let (supervisor, mut events) = supervisor(&fx);
        supervisor.run_pod(pod(
            "box",
            "Always",
            vec![image(
                shell("main", "echo started; sleep 100"),
                BUSYBOX,
                "Never",
            )],
        ));
        status_where(&mut events, |s| s.ready).await;
        let command = ["sh", "-c", "echo in $HOSTNAME; exit 4"].map(String::from);
        let out = supervisor.exec("box", "", &command).await.unwrap();
        assert_eq!(
            (String::from_utf8_lossy(&out.stdout).as_ref(), out.exit_code),
            ("in box\n", 4)
        );
        let logs = eventually("the log", || async {
            let l = supervisor.fetch_logs("box", "main", 0, false).await.ok()?;
            (!l.is_empty()).then_some(l)
        })
        .await;
        assert_eq!(String::from_utf8_lossy(&logs), "started\n");
        supervisor.delete_pod("box", "", DEFAULT_GRACE).await;
    }

    /// A pod writing `mib` MiB into its disk emptyDir `cache` (sizeLimit 1Mi), then sleeping.
    fn cache_writer(name: &str, mib: u32) -> pb::Pod {
        let mut main = image(
            shell(
                "main",
                &format!("dd if=/dev/zero of=/cache/f bs=1M count={mib}; sleep 1000"),
            ),
            BUSYBOX,
            "Never",
        );
        main.volume_mounts = vec![pb::VolumeMount {
            name: "cache".into(),
            mount_path: "/cache".into(),
            ..Default::default()
        }];
        let mut spec = pod(name, "Always", vec![main]);
        spec.volumes = vec![pb::Volume {
            name: "cache".into(),
            kind: "emptyDir".into(),
            size_bytes: 1 << 20,
            ..Default::default()
        }];
        spec
    }

    #[tokio::test]
    async fn a_pod_over_its_disk_empty_dir_limit_is_evicted_and_one_under_it_is_not() {
        let fx = Fixture::new().await;
        let (supervisor, mut events) = supervisor(&fx);
        let (hog, modest) = (cache_writer("hog", 4), cache_writer("modest", 0));
        let (hog_uid, modest_uid) = (hog.uid.clone(), modest.uid.clone());
        supervisor.run_pod(hog);
        supervisor.run_pod(modest);
        let evicted = status_where(&mut events, |s| {
            s.pod_name == "hog" && s.phase() == PodPhase::Failed
        })
        .await;
        assert_eq!(evicted.status_reason, "Evicted");
        assert_eq!(
            evicted.message,
            "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\"."
        );
        let main = &evicted.containers[0];
        assert_eq!(main.state(), ContainerState::Terminated);
        assert_eq!((main.exit_code, main.reason.as_str()), (137, "Evicted"));
        assert_eq!(
            pod_containers(&fx, &hog_uid).await,
            0,
            "its containers are gone"
        );

        // Not restarted, whatever its restartPolicy; still listed as evicted.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let snapshot = supervisor.snapshot();
        let hog = snapshot.iter().find(|s| s.pod_name == "hog").unwrap();
        assert_eq!(hog, &evicted);
        assert_eq!(pod_containers(&fx, &hog_uid).await, 0);
        // The pod under its limit runs on, measured every round.
        let modest = snapshot.iter().find(|s| s.pod_name == "modest").unwrap();
        assert_eq!(modest.phase(), PodPhase::Running, "{modest:?}");
        assert_eq!(pod_containers(&fx, &modest_uid).await, 2);

        supervisor.delete_pod("hog", &hog_uid, DEFAULT_GRACE).await;
        status_where(&mut events, |s| s.pod_name == "hog" && s.deleted).await;
        supervisor.delete_pod("modest", "", DEFAULT_GRACE).await;
        assert_eq!(pod_containers(&fx, &modest_uid).await, 0);
    }

    fn secured(mut c: pb::Container, sc: pb::SecurityContext) -> pb::Container {
        c.security_context = Some(sc);
        image(c, BUSYBOX, "Never")
    }

    fn drop_all() -> pb::SecurityContext {
        pb::SecurityContext {
            capabilities_drop: vec!["ALL".into()],
            ..Default::default()
        }
    }

    /// What `/proc/self/status` says of capabilities and no_new_privs.
    const CAPS: &str = "grep -E 'CapEff|NoNewPrivs' /proc/self/status";

    #[tokio::test]
    async fn the_security_context_is_applied_by_the_engine() {
        let fx = Fixture::new().await;
        let (supervisor, mut events) = supervisor(&fx);
        let user = secured(
            shell(
                "user",
                &format!("id -u; id -g; touch /x 2>&1 || echo ro; {CAPS}"),
            ),
            pb::SecurityContext {
                run_as_user: Some(1000),
                run_as_group: Some(3000),
                run_as_non_root: true,
                read_only_root_filesystem: true,
                ..drop_all()
            },
        );
        // As root, so that the capabilities left are the ones asked for.
        let dropped = secured(
            shell("dropped", &format!("id -u; touch /x && echo rw; {CAPS}")),
            pb::SecurityContext {
                allow_privilege_escalation: Some(false),
                ..drop_all()
            },
        );
        let net_admin = secured(
            shell("netadmin", CAPS),
            pb::SecurityContext {
                capabilities_add: vec!["NET_ADMIN".into()],
                ..drop_all()
            },
        );
        let plain = image(shell("plain", CAPS), BUSYBOX, "Never");
        let spec = pod("secure", "Never", vec![user, dropped, net_admin, plain]);
        supervisor.run_pod(spec);
        let done = status_where(&mut events, |s| {
            matches!(s.phase(), PodPhase::Succeeded | PodPhase::Failed)
        })
        .await;
        let mut out = HashMap::new();
        for name in ["user", "dropped", "netadmin", "plain"] {
            let log = supervisor.fetch_logs("secure", name, 0, false).await;
            let log = String::from_utf8_lossy(&log.unwrap()).into_owned();
            out.insert(name, log);
        }
        assert_eq!(done.phase(), PodPhase::Succeeded, "{done:?}\n{out:?}");
        let lines = |name: &str| -> Vec<String> {
            (out[name].lines())
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        };
        assert_eq!(
            lines("user"),
            [
                "1000",
                "3000",
                "touch: /x: Read-only file system",
                "ro",
                "CapEff: 0000000000000000",
                "NoNewPrivs: 0",
            ]
        );
        assert_eq!(
            lines("dropped"),
            ["0", "rw", "CapEff: 0000000000000000", "NoNewPrivs: 1"]
        );
        // NET_ADMIN is capability 12.
        assert_eq!(
            lines("netadmin"),
            ["CapEff: 0000000000001000", "NoNewPrivs: 0"]
        );
        let plain = lines("plain");
        assert_ne!(plain[0], "CapEff: 0000000000000000", "{plain:?}");
        assert_eq!(plain[1], "NoNewPrivs: 0");
        supervisor.delete_pod("secure", "", DEFAULT_GRACE).await;
    }

    #[tokio::test]
    async fn run_as_non_root_on_an_image_that_runs_as_root_waits_in_create_container_config_error()
    {
        let fx = Fixture::new().await;
        let (supervisor, mut events) = supervisor(&fx);
        let main = secured(
            shell("main", "id -u"),
            pb::SecurityContext {
                run_as_non_root: true,
                ..Default::default()
            },
        );
        let spec = pod("rooty", "Always", vec![main]);
        let uid = spec.uid.clone();
        supervisor.run_pod(spec);
        let waiting = status_where(&mut events, |s| {
            s.containers[0].reason == "CreateContainerConfigError"
        })
        .await;
        let main = &waiting.containers[0];
        assert_eq!(main.state(), ContainerState::Waiting);
        assert!(
            main.message
                .starts_with("container has runAsNonRoot and image will run as root"),
            "{main:?}"
        );
        assert_eq!(waiting.status_reason, "CreateContainerConfigError");
        // Still waiting a while later, and its container was never created: only the sandbox.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = supervisor.snapshot();
        let now = now.iter().find(|s| s.pod_name == "rooty").unwrap();
        assert_eq!(now.containers[0].reason, "CreateContainerConfigError");
        assert_eq!(now.containers[0].restarts, 0);
        assert_eq!(pod_containers(&fx, &uid).await, 1);
        supervisor.delete_pod("rooty", "", DEFAULT_GRACE).await;
    }
}

/// Whether process `pid` sleeps in `sigtimedwait` (its wait channel in /proc): while it
/// does, the kernel shows the waited-for signals as unblocked, so `SigBlk` cannot tell.
fn waits_for_signals(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan"))
        .is_ok_and(|w| w.starts_with("do_sigtimedwait"))
}
