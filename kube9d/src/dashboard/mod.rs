//! The web dashboard: a page served by kube9d on its own (loopback) address, for people who
//! would rather look than read.
//!
//! It holds no logic of its own about the cluster. Every read and every action goes through
//! the same [`ClusterApi`] the gRPC server runs, with the same token checks
//! ([`Auth::check`] on the gRPC method's path), so the dashboard can do exactly what the
//! signed-in token could do with kube9ctl, and says what kube9ctl would say when it cannot:
//!
//! - `POST /api/call/{Method}`: one `ClusterService` call, JSON in and out ([`bridge`]);
//! - `POST /api/apply`: a YAML manifest parsed and validated by the same code as `kube9ctl
//!   apply` (warnings included), then one `Apply` call;
//! - `GET /api/watch`: the `Watch` stream (what `kube9ctl get -w` reads) as server-sent
//!   events, plus a cluster sample every few seconds for the overview's chart ([`live`]);
//! - `GET /api/logs`: `StreamLogs` (`kube9ctl logs -f`) as server-sent events.
//!
//! Sessions ([`session`]): a token login sets an `HttpOnly`, `SameSite=Strict` cookie; every
//! call also carries the session's CSRF token in a header, and a cross-origin `Origin` is
//! refused. The token itself stays in kube9d's memory only.
//!
//! The page (`assets/`) is plain HTML, CSS and JavaScript compiled into the binary.

mod bridge;
mod live;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::api::ClusterApi;
use crate::auth::Auth;
use crate::shutdown::Shutdown;

/// Where the dashboard listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7210";
/// The largest request body: a manifest of kube9d's largest accepted call, with room.
const MAX_BODY_BYTES: usize = 8 << 20;

/// What every handler shares.
#[derive(Clone)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

struct Inner {
    api: ClusterApi,
    auth: Auth,
    sessions: session::Sessions,
    samples: live::Samples,
}

impl Dashboard {
    pub fn new(api: ClusterApi, auth: Auth) -> Self {
        Dashboard {
            inner: Arc::new(Inner {
                api,
                auth,
                sessions: session::Sessions::default(),
                samples: live::Samples::default(),
            }),
        }
    }

    /// The routes.
    fn router(&self) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/app.js", get(script))
            .route("/app.css", get(style))
            .route("/api/session", get(session::current))
            .route("/api/login", post(session::login))
            .route("/api/logout", post(session::logout))
            .route("/api/call/{method}", post(bridge::call))
            .route("/api/apply", post(bridge::apply))
            .route("/api/watch", get(live::watch))
            .route("/api/logs", get(live::logs))
            .route("/api/history", get(live::history))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.clone())
    }

    /// Serves on `listener` until `shutdown` fires; samples the cluster for the chart.
    pub fn spawn(self, listener: TcpListener, shutdown: Shutdown) {
        tokio::spawn(live::sample_loop(self.clone(), shutdown.clone()));
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        let mut stop = shutdown;
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.wait().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the dashboard stopped serving");
            }
        });
    }
}

/// Binds the dashboard's address: `None` when it is off, or when the default port is taken
/// (kube9d serves without it and says so); an address given explicitly must bind.
pub async fn bind(explicit: Option<SocketAddr>, off: bool) -> anyhow::Result<Option<TcpListener>> {
    if off {
        return Ok(None);
    }
    let addr = explicit.unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid address"));
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            let local = listener.local_addr()?;
            if !local.ip().is_loopback() {
                tracing::warn!(%local, "the dashboard listens beyond loopback over plain HTTP: tokens typed into it cross the network readable; put TLS in front of it");
            }
            Ok(Some(listener))
        }
        Err(e) if explicit.is_none() => {
            tracing::warn!(%addr, error = %e, "the dashboard's default address is taken: serving without a dashboard (--dashboard-listen ADDR picks another)");
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!(
            "failed to listen on {addr} for the dashboard: {e}"
        )),
    }
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Headers every page response carries: no framing by other sites, no inline script from
/// elsewhere, no sniffing.
fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    page("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> impl IntoResponse {
    page("text/javascript; charset=utf-8", APP_JS)
}

async fn style() -> impl IntoResponse {
    page("text/css; charset=utf-8", APP_CSS)
}
