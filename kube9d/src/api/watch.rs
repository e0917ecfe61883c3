//! `Watch`: object changes as they happen, optionally replayed from a resource version (see
//! [`crate::state::history`] for why a list followed by a watch from its version misses
//! nothing and repeats nothing).

use std::collections::HashSet;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use kube9_proto::pb;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream};
use tonic::Status;

use super::ClusterApi;
use crate::auth::Caller;
use crate::state::history::Dedup;
use crate::state::Error;

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

/// The kind a watch request names for `event`'s object, lower-cased.
fn kind(event: &pb::WatchEvent) -> &'static str {
    match &event.object {
        Some(pb::watch_event::Object::Node(_)) => "node",
        Some(pb::watch_event::Object::Pod(_)) => "pod",
        Some(pb::watch_event::Object::Event(_)) => "event",
        None => "",
    }
}

impl ClusterApi {
    pub(super) fn do_watch(
        &self,
        caller: Option<&Caller>,
        request: pb::WatchRequest,
    ) -> Result<WatchStream, Status> {
        let kinds: HashSet<String> = (request.kinds.iter())
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let wanted = move |ev: &pb::WatchEvent| kinds.is_empty() || kinds.contains(kind(ev));
        let (replay, rx) = (self.control)
            .watch_from(request.resource_version)
            .map_err(|e| Status::out_of_range(e.to_string()))?;
        let mut dedup = Dedup::after(request.resource_version);
        let live = BroadcastStream::new(rx).map(|item| match item {
            Ok(ev) => Ok(ev),
            Err(BroadcastStreamRecvError::Lagged(n)) => Err(Status::from(Error::Aborted(format!(
                "watch fell {n} changes behind; list again and re-watch"
            )))),
        });
        let stream = futures::stream::iter(replay.into_iter().map(Ok))
            .chain(live)
            .filter(move |item| {
                let keep = match item {
                    Ok(ev) => dedup.admit(ev) && wanted(ev),
                    Err(_) => true,
                };
                futures::future::ready(keep)
            });
        Ok(Box::pin(self.hold(caller, stream)?))
    }
}
