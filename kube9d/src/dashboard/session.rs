//! Signing in: a token typed into the page becomes a session cookie, and every later request
//! is checked against that session and its CSRF token.
//!
//! - The cookie (`kube9_session`) is random, `HttpOnly` (no script reads it) and
//!   `SameSite=Strict` (no other site's page sends it).
//! - Every request that acts carries the session's CSRF token in `X-Kube9-CSRF` (streams, which
//!   an `EventSource` opens without headers, in the `csrf` query parameter), and a request
//!   whose `Origin` is another site is refused outright.
//! - The token lives in kube9d's memory only, and is checked again on every call, so a token
//!   deleted or expired ends its sessions' rights at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kube9_proto::client::Role;
use parking_lot::Mutex;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

use super::Dashboard;

const COOKIE: &str = "kube9_session";
pub const CSRF_HEADER: &str = "x-kube9-csrf";
/// A session unused this long is forgotten.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the least recently used goes first.
const MAX_SESSIONS: usize = 1024;

/// A signed-in browser.
#[derive(Clone)]
pub struct Session {
    /// The `authorization` value its calls carry.
    pub bearer: String,
    pub token_id: String,
    pub role: Role,
    pub csrf: String,
    last_used: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    fn insert(&self, session: Session) -> String {
        let id = random_hex();
        let mut map = self.by_id.lock();
        map.retain(|_, s| s.last_used.elapsed() < IDLE);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) =
                (map.iter().min_by_key(|(_, s)| s.last_used)).map(|(id, _)| id.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), session);
        id
    }

    fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.by_id.lock();
        let session = map.get_mut(id)?;
        if session.last_used.elapsed() >= IDLE {
            map.remove(id);
            return None;
        }
        session.last_used = Instant::now();
        Some(session.clone())
    }

    fn remove(&self, id: &str) {
        self.by_id.lock().remove(id);
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A refusal, as the page shows it: the gRPC code's name and kube9d's message.
#[derive(Debug, Serialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(skip)]
    pub http: StatusCode,
}

impl ApiError {
    pub fn new(http: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            code: code.into(),
            message: message.into(),
            http,
        }
    }

    fn unauthenticated(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "Unauthenticated", message)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        use tonic::Code;
        let http = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            code: format!("{:?}", status.code()),
            message: status.message().to_string(),
            http,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let http = self.http;
        (http, Json(self)).into_response()
    }
}

/// The session a request belongs to, once its cookie, CSRF token and origin check out.
/// `csrf` is the token the request presented (header or query), `None` for requests that
/// only read the session itself.
pub fn authorize(
    dashboard: &Dashboard,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Session, ApiError> {
    authorized(dashboard, headers, csrf).map(|(_, session)| session)
}

/// [`authorize`], with the session's id.
fn authorized(
    dashboard: &Dashboard,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<(String, Session), ApiError> {
    let (id, session) = signed_in(dashboard, headers)?;
    let presented = csrf.or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
    if !presented.is_some_and(|c| constant_time_eq(c.as_bytes(), session.csrf.as_bytes())) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "PermissionDenied",
            "missing or wrong CSRF token: reload the page",
        ));
    }
    Ok((id, session))
}

/// The session (and its id) a same-origin request's cookie names.
fn signed_in(dashboard: &Dashboard, headers: &HeaderMap) -> Result<(String, Session), ApiError> {
    check_origin(headers)?;
    let id = cookie(headers).ok_or_else(|| ApiError::unauthenticated("sign in first"))?;
    let session = (dashboard.inner.sessions.get(&id))
        .ok_or_else(|| ApiError::unauthenticated("the session expired: sign in again"))?;
    Ok((id, session))
}

/// Refuses a request another site's page made: its `Origin` names another host than the one
/// it was sent to. (Requests without `Origin`, from scripts and same-origin GETs, pass: they
/// still need the cookie and the CSRF token.)
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host));
    if same {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "PermissionDenied",
            format!("cross-origin request from {origin} refused"),
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// What the page learns about its session.
#[derive(Serialize)]
pub struct SessionInfo {
    token_id: String,
    role: String,
    csrf: String,
    /// Whether this role may change anything: the page hides write actions otherwise.
    can_write: bool,
}

impl SessionInfo {
    fn of(session: &Session) -> Self {
        SessionInfo {
            token_id: session.token_id.clone(),
            role: session.role.to_string(),
            csrf: session.csrf.clone(),
            can_write: session.role == Role::Admin,
        }
    }
}

/// `GET /api/session`: who is signed in (401 when nobody is).
pub async fn current(
    State(dashboard): State<Dashboard>,
    headers: HeaderMap,
) -> Result<Json<SessionInfo>, ApiError> {
    let (_, session) = signed_in(&dashboard, &headers)?;
    // The token may have been deleted since: check it again.
    (dashboard.inner.auth)
        .authenticate(Some(&session.bearer))
        .map_err(|r| ApiError::from(r.status()))?;
    Ok(Json(SessionInfo::of(&session)))
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /api/login {"token": "..."}`: a viewer or admin token opens a session.
pub async fn login(
    State(dashboard): State<Dashboard>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(login): Json<Login>,
) -> Result<Response, ApiError> {
    check_origin(&headers)?;
    let token = login.token.trim();
    let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
    let bearer = format!("Bearer {token}");
    let caller = dashboard
        .inner
        .auth
        .authenticate(Some(&bearer))
        .map_err(|r| {
            tracing::warn!(%peer, reason = %r.log_reason(), "dashboard: refused a sign-in");
            ApiError::from(r.status())
        })?;
    if caller.role == Role::Node {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "PermissionDenied",
            format!(
                "token {} is a node token: sign in with a viewer or admin token (kube9ctl token create --role viewer)",
                caller.token_id
            ),
        ));
    }
    let session = Session {
        bearer,
        token_id: caller.token_id.clone(),
        role: caller.role,
        csrf: random_hex(),
        last_used: Instant::now(),
    };
    let info = SessionInfo::of(&session);
    let id = dashboard.inner.sessions.insert(session);
    tracing::info!(%peer, token = %caller.token_id, role = %caller.role, "dashboard: signed in");
    let cookie = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict");
    Ok(([(header::SET_COOKIE, cookie)], Json(info)).into_response())
}

/// `POST /api/logout`: forgets the session.
pub async fn logout(State(dashboard): State<Dashboard>, headers: HeaderMap) -> Response {
    if let Ok((id, session)) = authorized(&dashboard, &headers, None) {
        dashboard.inner.sessions.remove(&id);
        tracing::info!(token = %session.token_id, "dashboard: signed out");
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_must_match_host() {
        assert!(check_origin(&headers(&[("host", "127.0.0.1:7210")])).is_ok());
        assert!(check_origin(&headers(&[
            ("host", "127.0.0.1:7210"),
            ("origin", "http://127.0.0.1:7210")
        ]))
        .is_ok());
        let e = check_origin(&headers(&[
            ("host", "127.0.0.1:7210"),
            ("origin", "http://evil.example"),
        ]))
        .unwrap_err();
        assert_eq!(e.http, StatusCode::FORBIDDEN);
        assert!(e.message.contains("evil.example"), "{}", e.message);
    }

    #[test]
    fn cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=b; kube9_session=abc123; c=d")]);
        assert_eq!(cookie(&h).as_deref(), Some("abc123"));
        assert_eq!(cookie(&headers(&[("cookie", "a=b")])), None);
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let sessions = Sessions::default();
        let make = || Session {
            bearer: "Bearer x".into(),
            token_id: "x".into(),
            role: Role::Viewer,
            csrf: "c".into(),
            last_used: Instant::now(),
        };
        let first = sessions.insert(make());
        assert!(sessions.get(&first).is_some());
        for _ in 0..MAX_SESSIONS {
            sessions.insert(make());
        }
        assert_eq!(sessions.by_id.lock().len(), MAX_SESSIONS);
        assert!(sessions.get(&first).is_none(), "the oldest was dropped");
        let id = sessions.insert(Session {
            last_used: Instant::now() - IDLE,
            ..make()
        });
        assert!(sessions.get(&id).is_none(), "an idle session is gone");
    }

    #[test]
    fn csrf_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
