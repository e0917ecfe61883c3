//! Reconnect delays: exponential from 100 ms, doubling, capped at 2 s, with jitter.
//!
//! Jitter comes from the clock's sub-second nanoseconds: enough to spread a fleet of agents
//! that lost kube9d at the same moment, without a random number generator.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First delay after a failure.
pub const INITIAL: Duration = Duration::from_millis(100);
/// Longest delay.
pub const MAX: Duration = Duration::from_secs(2);

/// The delay schedule between reconnect attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: INITIAL }
    }
}

impl Backoff {
    /// The delay before the next attempt: between 3/4 and all of the current step.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(MAX);
        step - jitter(step / 4)
    }

    /// Back to the first step (after a successful registration).
    pub fn reset(&mut self) {
        self.next = INITIAL;
    }

    /// Straight to the longest step (the server said we are not welcome).
    pub fn saturate(&mut self) {
        self.next = MAX;
    }
}

/// A clock-derived duration in `[0, max]`.
fn jitter(max: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let max_nanos = u32::try_from(max.as_nanos()).unwrap_or(u32::MAX);
    Duration::from_nanos(u64::from(nanos % max_nanos.saturating_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..8).map(|_| backoff.next_delay()).collect();
        let steps = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
        for (delay, step) in delays.iter().zip(steps) {
            let step = Duration::from_millis(step);
            assert!(
                *delay <= step && *delay >= step * 3 / 4,
                "{delay:?} for step {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= INITIAL);
        backoff.saturate();
        assert!(backoff.next_delay() >= MAX * 3 / 4);
    }
}
