//! Requests relayed to a node's agent over its stream, and the replies routed back to the
//! caller: one reply (`logs`), or a stream of them (`logs -f`, `exec`). kube9d never dials an
//! agent, so these ride the agent's own stream: the request goes down as a control message with
//! a request id, the replies come up carrying it.
//!
//! A streamed request ends when the agent says so (`done`/`exited`), or when the caller goes
//! away: dropping the [`Subscription`] unregisters it and runs its cancel hook, which tells the
//! agent to stop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kube9_proto::pb;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

/// Replies buffered per streamed request before the caller counts as too slow.
const STREAM_BUFFER: usize = 256;

/// One reply of a streamed request.
#[derive(Debug, Clone)]
pub enum StreamReply {
    Log(pb::LogChunkReply),
    Exec(pb::ExecReply),
    /// The relay gave up on the request (the caller read too slowly, or the agent left).
    Broken(String),
}

/// The table of requests in flight. Cheap to clone.
#[derive(Clone, Default)]
pub struct Relay {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    next: AtomicU64,
    once: Mutex<HashMap<u64, oneshot::Sender<pb::LogsReply>>>,
    /// Streamed requests: the node they went to, and where their replies go.
    streams: Mutex<HashMap<u64, (String, mpsc::Sender<StreamReply>)>>,
}

impl Relay {
    fn next_id(&self) -> u64 {
        self.inner.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a waiter for one logs reply; returns the request id.
    pub fn expect_logs(&self) -> (u64, oneshot::Receiver<pb::LogsReply>) {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        self.inner.once.lock().insert(id, tx);
        (id, rx)
    }

    /// Forgets a one-reply request (timed out, or never sent).
    pub fn cancel_logs(&self, id: u64) {
        self.inner.once.lock().remove(&id);
    }

    pub fn deliver_logs(&self, reply: pb::LogsReply) {
        if let Some(tx) = self.inner.once.lock().remove(&reply.request_id) {
            let _ = tx.send(reply);
        }
    }

    /// Registers a streamed request to `node`. `on_cancel` runs if the caller drops the
    /// subscription before the agent ended the stream.
    pub fn subscribe(
        &self,
        node: &str,
        on_cancel: impl FnOnce(u64) + Send + 'static,
    ) -> Subscription {
        let id = self.next_id();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        self.inner.streams.lock().insert(id, (node.to_string(), tx));
        Subscription {
            id,
            rx,
            relay: self.clone(),
            on_cancel: Some(Box::new(on_cancel)),
        }
    }

    /// Routes one reply of a streamed request to its caller. A caller that cannot keep up is
    /// cut off rather than allowed to stall the agent's stream (which also carries heartbeats).
    pub fn deliver(&self, id: u64, reply: StreamReply) {
        let last = match &reply {
            StreamReply::Log(l) => l.done,
            StreamReply::Exec(e) => e.exited || !e.error.is_empty(),
            StreamReply::Broken(_) => true,
        };
        let mut streams = self.inner.streams.lock();
        let Some((_, tx)) = streams.get(&id) else {
            return;
        };
        match tx.try_send(reply) {
            Ok(()) if !last => {}
            Ok(()) => {
                streams.remove(&id);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let tx = streams.remove(&id).expect("present");
                tracing::warn!(
                    request = id,
                    "streamed request dropped: the caller reads too slowly"
                );
                // The buffer is full: the caller sees the channel close and the stream ends.
                drop(tx);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                streams.remove(&id);
            }
        }
    }

    /// Ends every streamed request to `node` with an error: its agent's stream went away.
    pub fn break_node(&self, node: &str, why: &str) {
        let ids: Vec<u64> = self
            .inner
            .streams
            .lock()
            .iter()
            .filter(|(_, (n, _))| n == node)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.deliver(id, StreamReply::Broken(why.to_string()));
        }
    }
}

/// The caller's end of a streamed request.
pub struct Subscription {
    pub id: u64,
    rx: mpsc::Receiver<StreamReply>,
    relay: Relay,
    on_cancel: Option<Box<dyn FnOnce(u64) + Send>>,
}

impl Subscription {
    /// The next reply; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<StreamReply> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let still_open = self.relay.inner.streams.lock().remove(&self.id).is_some();
        if still_open {
            if let Some(cancel) = self.on_cancel.take() {
                cancel(self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn chunk(content: &str, done: bool) -> StreamReply {
        StreamReply::Log(pb::LogChunkReply {
            content: content.as_bytes().to_vec(),
            done,
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn replies_reach_their_caller_and_the_last_one_ends_the_stream() {
        let relay = Relay::default();
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        let mut sub = relay.subscribe("n1", move |_| flag.store(true, Ordering::SeqCst));
        relay.deliver(sub.id, chunk("a", false));
        relay.deliver(sub.id, chunk("b", true));
        relay.deliver(sub.id, chunk("late", false));
        assert!(matches!(sub.next().await, Some(StreamReply::Log(l)) if l.content == b"a"));
        assert!(matches!(sub.next().await, Some(StreamReply::Log(l)) if l.done));
        assert!(sub.next().await.is_none());
        drop(sub);
        assert!(
            !cancelled.load(Ordering::SeqCst),
            "a finished stream needs no cancel"
        );
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_cancels_the_request() {
        let relay = Relay::default();
        let cancelled = Arc::new(AtomicU64::new(0));
        let seen = cancelled.clone();
        let sub = relay.subscribe("n1", move |id| seen.store(id, Ordering::SeqCst));
        let id = sub.id;
        drop(sub);
        assert_eq!(cancelled.load(Ordering::SeqCst), id);
        // Replies after that go nowhere, harmlessly.
        relay.deliver(id, chunk("x", false));
    }

    #[tokio::test]
    async fn a_caller_that_reads_too_slowly_is_cut_off() {
        let relay = Relay::default();
        let mut sub = relay.subscribe("n1", |_| {});
        for _ in 0..STREAM_BUFFER + 1 {
            relay.deliver(sub.id, chunk("x", false));
        }
        let mut n = 0;
        while sub.next().await.is_some() {
            n += 1;
        }
        assert_eq!(n, STREAM_BUFFER);
    }

    #[tokio::test]
    async fn requests_to_a_node_whose_agent_left_end_with_the_reason() {
        let relay = Relay::default();
        let mut on_n1 = relay.subscribe("n1", |_| {});
        let on_n2 = relay.subscribe("n2", |_| {});
        relay.break_node("n1", "node n1 disconnected");
        assert!(matches!(on_n1.next().await, Some(StreamReply::Broken(why)) if why.contains("n1")));
        assert!(on_n1.next().await.is_none());
        assert!(relay.inner.streams.lock().contains_key(&on_n2.id));
    }
}
