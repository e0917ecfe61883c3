//! Docker's inspect answers into [`ContainerInfo`]; pure functions.

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};

use crate::cri::types::{ContainerId, ContainerInfo, ContainerState};

/// What the engine says about a container, in our terms.
pub fn container_info(c: &ContainerInspectResponse) -> ContainerInfo {
    let state = c.state.as_ref();
    let status = state.and_then(|s| s.status);
    let state_kind = match status {
        Some(ContainerStateStatusEnum::CREATED) => ContainerState::Created,
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::STOPPING,
        ) => ContainerState::Running,
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
            ContainerState::Exited
        }
        _ => ContainerState::Unknown,
    };
    let config = c.config.as_ref();
    ContainerInfo {
        id: ContainerId(c.id.clone().unwrap_or_default()),
        name: c
            .name
            .as_deref()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
        state: state_kind,
        exit_code: (state_kind == ContainerState::Exited)
            .then(|| state.and_then(|s| s.exit_code).unwrap_or_default() as i32),
        oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
        error: state
            .and_then(|s| s.error.clone())
            .filter(|e| !e.is_empty()),
        pid: state
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0),
        started_ms: state
            .and_then(|s| s.started_at.as_deref())
            .and_then(unix_ms),
        // The engine's two clocks can put the end a millisecond before the start.
        finished_ms: state
            .and_then(|s| s.finished_at.as_deref())
            .and_then(unix_ms)
            .map(|finished| {
                let started = state
                    .and_then(|s| s.started_at.as_deref())
                    .and_then(unix_ms);
                started.map_or(finished, |started| finished.max(started))
            }),
        labels: config.and_then(|c| c.labels.clone()).unwrap_or_default(),
    }
}

/// Whether `c` ended by SIGKILL (exit 137) under a memory limit without the engine saying
/// it was OOM-killed: the engine can lose the kernel's OOM notification.
pub fn may_be_unreported_oom_kill(c: &ContainerInspectResponse) -> bool {
    let state = c.state.as_ref();
    let exited = matches!(
        state.and_then(|s| s.status),
        Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD)
    );
    let limited = c
        .host_config
        .as_ref()
        .and_then(|h| h.memory)
        .is_some_and(|m| m > 0);
    exited
        && limited
        && state.and_then(|s| s.exit_code) == Some(137)
        && !state.and_then(|s| s.oom_killed).unwrap_or(false)
}

/// The container's address on `network` (or on its only network when `None`).
pub fn ip_address(c: &ContainerInspectResponse, network: Option<&str>) -> Option<String> {
    let networks = c.network_settings.as_ref()?.networks.as_ref()?;
    let mut candidates: Vec<(&String, &str)> = networks
        .iter()
        .filter(|(name, _)| network.is_none_or(|n| n == name.as_str()))
        .filter_map(|(name, endpoint)| Some((name, endpoint.ip_address.as_deref()?)))
        .filter(|(_, ip)| !ip.is_empty())
        .collect();
    // Deterministic when the sandbox somehow sits on several networks.
    candidates.sort();
    candidates.first().map(|(_, ip)| ip.to_string())
}

/// Unix milliseconds of an RFC 3339 UTC time as the engine writes it
/// (`2026-11-26T18:37:00.123456789Z`); `None` for Go's zero time (year 1: never happened)
/// and for anything unparsable.
pub fn unix_ms(time: &str) -> Option<i64> {
    let (date, clock) = time.split_once('T')?;
    let clock = clock
        .strip_suffix('Z')
        .or_else(|| clock.strip_suffix("+00:00"))?;
    let mut ymd = date.splitn(3, '-');
    let year: i64 = ymd.next()?.parse().ok()?;
    let month: u32 = ymd.next()?.parse().ok()?;
    let day: u32 = ymd.next()?.parse().ok()?;
    if year <= 1 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.splitn(3, ':');
    let hour: i64 = parts.next()?.parse().ok()?;
    let minute: i64 = parts.next()?.parse().ok()?;
    let second: i64 = parts.next()?.parse().ok()?;
    let millis: i64 = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
        digits.parse().ok()?
    };
    let days = days_from_civil(year, month, day);
    Some((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, EndpointSettings, NetworkSettings};
    use std::collections::HashMap;

    #[test]
    fn engine_times_become_unix_milliseconds() {
        assert_eq!(unix_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_ms("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        assert_eq!(
            unix_ms("2026-11-26T18:37:00.123456789Z"),
            Some(1_795_718_220_123)
        );
        assert_eq!(unix_ms("2024-02-29T12:00:00.5Z"), Some(1_709_208_000_500));
    }

    #[test]
    fn the_zero_time_and_garbage_are_none() {
        assert_eq!(unix_ms("0001-01-01T00:00:00Z"), None);
        assert_eq!(unix_ms(""), None);
        assert_eq!(unix_ms("2026-13-01T00:00:00Z"), None);
        assert_eq!(unix_ms("2026-01-01T00:00:00+02:00"), None);
    }

    #[test]
    fn an_exited_container_reports_its_code_and_oom() {
        let c = ContainerInspectResponse {
            id: Some("abc".into()),
            name: Some("/k9_app_p_default_u_0".into()),
            state: Some(bollard::models::ContainerState {
                status: Some(ContainerStateStatusEnum::EXITED),
                exit_code: Some(137),
                oom_killed: Some(true),
                pid: Some(0),
                error: Some(String::new()),
                started_at: Some("1970-01-01T00:00:01Z".into()),
                finished_at: Some("0001-01-01T00:00:00Z".into()),
                ..Default::default()
            }),
            config: Some(ContainerConfig {
                image: Some("sha256:1".into()),
                labels: Some(HashMap::from([("k".to_string(), "v".to_string())])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = container_info(&c);
        assert_eq!(info.name, "k9_app_p_default_u_0");
        assert_eq!(info.state, ContainerState::Exited);
        assert_eq!(info.exit_code, Some(137));
        assert!(info.oom_killed);
        assert_eq!((info.pid, info.error), (None, None));
        assert_eq!((info.started_ms, info.finished_ms), (Some(1000), None));
        assert_eq!(info.image, "sha256:1");
        assert_eq!(info.labels["k"], "v");
    }

    fn exited(code: i64, oom: bool, memory: i64) -> ContainerInspectResponse {
        ContainerInspectResponse {
            state: Some(bollard::models::ContainerState {
                status: Some(ContainerStateStatusEnum::EXITED),
                exit_code: Some(code),
                oom_killed: Some(oom),
                started_at: Some("2026-11-27T09:00:00.270Z".into()),
                finished_at: Some("2026-11-27T09:00:00.269Z".into()),
                ..Default::default()
            }),
            host_config: Some(bollard::models::HostConfig {
                memory: Some(memory),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_sigkill_under_a_memory_limit_that_the_engine_did_not_name_oom_is_suspect() {
        assert!(may_be_unreported_oom_kill(&exited(137, false, 16 << 20)));
        assert!(!may_be_unreported_oom_kill(&exited(137, true, 16 << 20)));
        assert!(!may_be_unreported_oom_kill(&exited(137, false, 0)));
        assert!(!may_be_unreported_oom_kill(&exited(1, false, 16 << 20)));
        let mut running = exited(137, false, 16 << 20);
        running.state.as_mut().unwrap().status = Some(ContainerStateStatusEnum::RUNNING);
        assert!(!may_be_unreported_oom_kill(&running));
    }

    #[test]
    fn an_end_the_engine_stamps_before_the_start_is_the_start() {
        let info = container_info(&exited(137, true, 0));
        assert_eq!(info.finished_ms, info.started_ms);
        assert!(info.started_ms.is_some());
    }

    #[test]
    fn the_ip_is_taken_from_the_named_network() {
        let endpoint = |ip: &str| EndpointSettings {
            ip_address: Some(ip.into()),
            ..Default::default()
        };
        let c = ContainerInspectResponse {
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([
                    ("bridge".to_string(), endpoint("172.17.0.2")),
                    ("kube9-net".to_string(), endpoint("10.9.0.5")),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            ip_address(&c, Some("kube9-net")).as_deref(),
            Some("10.9.0.5")
        );
        assert_eq!(ip_address(&c, None).as_deref(), Some("172.17.0.2"));
        assert_eq!(ip_address(&c, Some("other")), None);
    }
}
