//! Token management (`kube9ctl token`), the secret redaction viewers get, and the per-client
//! cap on open streams.

use std::time::Duration;

use futures::{Stream, StreamExt};
use kube9_proto::client::Role;
use kube9_proto::pb;
use tonic::Status;

use super::ClusterApi;
use crate::auth::{Caller, StreamPermit};

impl ClusterApi {
    pub(super) async fn do_create_token(
        &self,
        r: pb::CreateTokenRequest,
    ) -> Result<pb::CreateTokenResponse, Status> {
        let role: Role = match r.role.as_str() {
            "" => Role::Node,
            role => role.parse().map_err(Status::invalid_argument)?,
        };
        if r.ttl_seconds < 0 {
            return Err(Status::invalid_argument(
                "a token's ttl cannot be negative (0: never expires)",
            ));
        }
        let ttl = (r.ttl_seconds > 0).then(|| Duration::from_secs(r.ttl_seconds as u64));
        let (token, info) = self.auth.create(role, ttl, &r.description).await?;
        Ok(pb::CreateTokenResponse {
            info: Some(info),
            token: token.to_string(),
            ca_cert_hash: self.auth.ca_hash().to_string(),
            cluster_id: self.control.cluster_id().to_string(),
        })
    }

    pub(super) fn do_list_tokens(&self) -> pb::ListTokensResponse {
        pb::ListTokensResponse {
            tokens: self.auth.list(),
        }
    }

    pub(super) async fn do_delete_token(
        &self,
        r: pb::DeleteTokenRequest,
    ) -> Result<pb::TokenInfo, Status> {
        if r.id.is_empty() {
            return Err(Status::invalid_argument(
                "name the token to delete by its id",
            ));
        }
        self.auth.delete(&r.id).await
    }

    /// Counts a stream against its caller's cap for as long as it is open.
    pub(super) fn hold<S>(
        &self,
        caller: Option<&Caller>,
        stream: S,
    ) -> Result<impl Stream<Item = S::Item> + Send + 'static, Status>
    where
        S: Stream + Send + 'static,
    {
        let permit: StreamPermit = self.auth.open_stream(caller)?;
        Ok(stream.map(move |item| {
            let _held = &permit;
            item
        }))
    }
}

/// A Secret as `caller` may see it: viewers get the keys, not the values.
pub(super) fn redact(mut secret: pb::Secret, caller: Option<&Caller>) -> pb::Secret {
    if !Caller::reads_secrets(caller) {
        for value in secret.data.values_mut() {
            value.clear();
        }
        secret.redacted = true;
    }
    secret
}
