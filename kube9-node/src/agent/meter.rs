//! What the pods use, for `kube9ctl top`: each container runs in its own process group (its
//! main process's pid), so a pod uses what the processes of its containers' groups use, read
//! from `/proc`: CPU time (`utime + stime`, in clock ticks of 1/100 s, Linux's fixed
//! USER_HZ) turned into millicores between two heartbeats, and resident memory (`VmRSS`).
//! A container whose pid this agent cannot see in its `/proc` (an engine's container, with
//! an agent in a container of its own) is not counted; a pod with none seen is left out.

use std::collections::HashMap;

use kube9_proto::pb;
use tokio::time::Instant;

/// `/proc`'s clock ticks per second (USER_HZ).
const TICKS_PER_SECOND: u64 = 100;

/// CPU ticks of each pod (by uid) at the previous sample.
#[derive(Debug, Default)]
pub struct Meter {
    previous: HashMap<String, (u64, Instant)>,
}

/// `(process group, CPU ticks)` of one process, from `/proc/PID/stat`.
fn stat(text: &str) -> Option<(i32, u64)> {
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let pgrp = fields.get(2)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((pgrp, utime + stime))
}

/// Resident memory in bytes, from `/proc/PID/status`.
fn rss(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

impl Meter {
    /// The usage of every running pod in `pods` (their statuses, with container pids).
    pub fn sample(&mut self, pods: &[pb::PodStatus]) -> Vec<pb::PodUsage> {
        let now = Instant::now();
        let mut groups: HashMap<i32, usize> = HashMap::new();
        for (i, pod) in pods.iter().enumerate() {
            for c in pod.containers.iter().chain(&pod.init_containers) {
                if c.pid > 0 {
                    groups.insert(c.pid, i);
                }
            }
        }
        if groups.is_empty() {
            self.previous.clear();
            return Vec::new();
        }
        // (ticks, bytes, seen) per pod.
        let mut used = vec![(0u64, 0u64, false); pods.len()];
        let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        for entry in entries {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some((pgrp, ticks)) = stat(&text) else {
                continue;
            };
            if let Some(&i) = groups.get(&pgrp) {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
                used[i].0 += ticks;
                used[i].1 += status.map_or(0, |s| rss(&s));
                used[i].2 = true;
            }
        }
        let mut previous = HashMap::new();
        let mut out = Vec::new();
        for (pod, (ticks, bytes, seen)) in pods.iter().zip(used) {
            if !seen {
                continue;
            }
            let cpu_millis = match self.previous.get(&pod.pod_uid) {
                Some(&(before, at)) if ticks >= before && now > at => {
                    let seconds = (now - at).as_secs_f64();
                    ((ticks - before) as f64 * 1000.0 / TICKS_PER_SECOND as f64 / seconds) as i64
                }
                _ => 0,
            };
            previous.insert(pod.pod_uid.clone(), (ticks, now));
            out.push(pb::PodUsage {
                pod_namespace: pod.pod_namespace.clone(),
                pod_name: pod.pod_name.clone(),
                pod_uid: pod.pod_uid.clone(),
                cpu_millis,
                memory_bytes: bytes as i64,
            });
        }
        self.previous = previous;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_status_are_read_past_odd_command_names() {
        let line =
            "4242 (sh (x) y) S 1 4240 4240 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0 300 1000 200";
        assert_eq!(stat(line), Some((4240, 22)));
        assert_eq!(rss("Name:\tsh\nVmRSS:\t    1516 kB\n"), 1516 * 1024);
        assert_eq!(rss("Name:\tkthread\n"), 0);
    }

    #[test]
    fn this_process_group_is_measured() {
        let me = std::process::id() as i32;
        let pgrp = nix::unistd::getpgrp().as_raw();
        let pod = pb::PodStatus {
            pod_name: "p".into(),
            pod_uid: "u".into(),
            containers: vec![pb::ContainerStatus {
                pid: pgrp,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut meter = Meter::default();
        let first = meter.sample(std::slice::from_ref(&pod));
        assert_eq!(first.len(), 1, "pid {me} in group {pgrp}");
        assert!(first[0].memory_bytes > 0);
        assert_eq!(first[0].cpu_millis, 0, "no rate from one sample");
    }
}
