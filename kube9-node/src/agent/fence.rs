//! Self-fencing: an agent cut off from kube9d for the fence time stops its pods.
//!
//! kube9d cannot remove a node it does not run (an agent joined by hand, maybe on another
//! host). When it gives such a node up, it moves the node's pods only once the fence time has
//! passed since the last heartbeat it received. The agent has stopped them by then, so they
//! never run twice: its clock starts no later than kube9d's (contact is a heartbeat kube9d
//! acknowledged, `HeartbeatAck`, dated when the agent *sent* it), and it starts stopping them
//! one stop grace period ([`Fence::stop_grace`]) before the fence time ends.
//!
//! ```text
//!   heartbeat N sent ──kube9d counts it, HeartbeatAck N──▶ contact = when N was sent
//!   not serving, at contact + fence - grace ──▶ stop every pod (once), keep reconnecting
//!   serving, nothing acknowledged that long ──▶ the stream is dead: end the session
//!   registered again ──▶ may fence again (kube9d may have sent pods meanwhile)
//! ```
//! The fence time is the agent's `--fence-ms` until kube9d sends its own in `Registered`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::containers::DEFAULT_GRACE;

/// Unacknowledged heartbeats remembered; beyond that the oldest are forgotten (an ack for one
/// of them then proves nothing, which only makes the agent fence earlier).
const UNACKED_MAX: usize = 64;

/// What the agent knows about its contact with kube9d, and whether it fenced.
#[derive(Debug)]
pub struct Fence {
    /// Zero: never fence.
    time: Duration,
    /// When the last heartbeat kube9d acknowledged was sent (the agent's start before that).
    contact: Instant,
    /// Heartbeats of this session not acknowledged yet: `(seq, sent at)`, oldest first.
    unacked: VecDeque<(u64, Instant)>,
    /// Since when acknowledgements are due: the registration, or heartbeats resuming.
    expected_since: Instant,
    /// The pods were stopped since the last registration.
    fenced: bool,
}

impl Fence {
    /// Fencing after `time` (zero: never); `now` counts as contact until the first
    /// acknowledgement.
    pub fn new(time: Duration, now: Instant) -> Self {
        Fence {
            time,
            contact: now,
            unacked: VecDeque::new(),
            expected_since: now,
            fenced: false,
        }
    }

    /// The fence time in force.
    pub fn time(&self) -> Duration {
        self.time
    }

    /// How long fenced pods get to stop (SIGTERM, then SIGKILL): the usual grace period, at
    /// most half the fence time. Fencing starts that long before the fence time ends.
    pub fn stop_grace(&self) -> Duration {
        DEFAULT_GRACE.min(self.time / 2)
    }

    /// A session registered at `now`. kube9d's fence time (`fence_ms`, 0 when it did not say)
    /// replaces the agent's own; pods may arrive, so the next loss of contact fences again.
    pub fn registered(&mut self, fence_ms: u64, now: Instant) {
        if fence_ms > 0 {
            self.time = Duration::from_millis(fence_ms);
        }
        self.unacked.clear();
        self.expected_since = now;
        self.fenced = false;
    }

    /// Heartbeat `seq` goes out at `now`.
    pub fn sent(&mut self, seq: u64, now: Instant) {
        if self.unacked.len() == UNACKED_MAX {
            self.unacked.pop_front();
        }
        self.unacked.push_back((seq, now));
    }

    /// kube9d counted heartbeat `seq`: contact as of its sending.
    pub fn acknowledged(&mut self, seq: u64) {
        while let Some(&(sent_seq, sent_at)) = self.unacked.front() {
            if sent_seq > seq {
                break;
            }
            self.unacked.pop_front();
            if sent_seq == seq {
                self.contact = self.contact.max(sent_at);
            }
        }
    }

    /// Heartbeats go out again at `now` after kube9d paused them.
    pub fn resumed(&mut self, now: Instant) {
        self.expected_since = now;
    }

    /// When the pods must start stopping unless contact comes back; `None` when fencing is
    /// off or done since the last registration.
    pub fn deadline(&self) -> Option<Instant> {
        (!self.fenced && !self.time.is_zero()).then(|| self.fence_point(self.contact))
    }

    /// While serving with heartbeats going out: when the stream counts as dead because kube9d
    /// acknowledged nothing for that long (a half-open connection). `None` when off.
    pub fn silence_deadline(&self) -> Option<Instant> {
        (!self.time.is_zero()).then(|| self.fence_point(self.contact.max(self.expected_since)))
    }

    fn fence_point(&self, since: Instant) -> Instant {
        since + self.time - self.stop_grace()
    }

    /// Records that the pods are being stopped at `now`; returns how long contact is lost.
    pub fn fence(&mut self, now: Instant) -> Duration {
        self.fenced = true;
        now.saturating_duration_since(self.contact)
    }
}

/// Resolves at `deadline`; never without one.
pub async fn due(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FENCE: Duration = Duration::from_secs(60);
    /// When fencing starts, after contact: the pods are stopped when the fence time ends.
    const START: Duration = Duration::from_secs(58);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn contact_is_when_the_acknowledged_heartbeat_was_sent() {
        let t0 = Instant::now();
        let mut fence = Fence::new(FENCE, t0);
        assert_eq!(
            fence.deadline(),
            Some(t0 + START),
            "start-up counts until an ack"
        );
        fence.registered(0, t0 + ms(10));
        fence.sent(1, t0 + ms(100));
        fence.sent(2, t0 + ms(1100));
        // Acknowledged late: still dated from the sending.
        fence.acknowledged(1);
        assert_eq!(fence.deadline(), Some(t0 + ms(100) + START));
        fence.acknowledged(2);
        assert_eq!(fence.deadline(), Some(t0 + ms(1100) + START));
        // A stale or unknown ack changes nothing.
        fence.acknowledged(1);
        fence.acknowledged(7);
        assert_eq!(fence.deadline(), Some(t0 + ms(1100) + START));
    }

    #[test]
    fn it_fences_once_until_the_next_registration() {
        let t0 = Instant::now();
        let mut fence = Fence::new(FENCE, t0);
        assert_eq!(fence.fence(t0 + ms(61_000)), ms(61_000));
        assert_eq!(fence.deadline(), None);
        // Registered again, no heartbeat acknowledged since: the next loss fences at once.
        fence.registered(0, t0 + ms(70_000));
        assert_eq!(fence.deadline(), Some(t0 + START));
    }

    #[test]
    fn kube9d_sets_the_fence_time_and_zero_never_fences() {
        let t0 = Instant::now();
        let mut fence = Fence::new(Duration::ZERO, t0);
        assert_eq!((fence.deadline(), fence.silence_deadline()), (None, None));
        fence.registered(1500, t0);
        assert_eq!(fence.time(), ms(1500));
        assert_eq!(fence.stop_grace(), ms(750), "at most half the fence time");
        assert_eq!(fence.deadline(), Some(t0 + ms(750)));
        fence.registered(0, t0);
        assert_eq!(
            fence.time(),
            ms(1500),
            "0 from kube9d keeps what it said before"
        );
    }

    #[test]
    fn silence_counts_from_registration_or_resumed_heartbeats() {
        let t0 = Instant::now();
        let mut fence = Fence::new(FENCE, t0);
        fence.registered(0, t0 + ms(5000));
        assert_eq!(fence.silence_deadline(), Some(t0 + ms(5000) + START));
        fence.sent(1, t0 + ms(5001));
        fence.acknowledged(1);
        assert_eq!(fence.silence_deadline(), Some(t0 + ms(5001) + START));
        fence.resumed(t0 + ms(200_000));
        assert_eq!(fence.silence_deadline(), Some(t0 + ms(200_000) + START));
    }
}
