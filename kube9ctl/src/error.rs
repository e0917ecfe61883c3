//! The errors kube9ctl prints, and how: `Error from server (NotFound): ...` for what kube9d
//! refused, `error: ...` for everything else, nothing more for errors already printed.

use std::fmt;

/// kube9d answered with a gRPC error status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Error from server ({}): {message}", code_name(*.code))]
pub struct ServerError {
    pub code: tonic::Code,
    pub message: String,
}

impl ServerError {
    /// A server-style error for what the client found itself (an event id that does not exist).
    pub fn not_found(kind: &str, name: &str) -> Self {
        ServerError {
            code: tonic::Code::NotFound,
            message: format!("{kind} {name:?} not found"),
        }
    }

    /// Whether the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code == tonic::Code::NotFound
    }
}

/// kube9d could not be reached, or not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConnectError {
    pub url: String,
    /// The innermost error: `Connection refused (os error 111)`, a TLS alert, ...
    pub cause: String,
    /// Where the CA came from (for a certificate kube9ctl does not trust).
    pub ca_source: String,
    /// What went wrong, as far as the cause tells.
    pub failure: Failure,
}

impl ConnectError {
    /// A failure to reach `url`; `answered` says kube9d had already answered on this
    /// connection (then a broken connection is not a wrong scheme).
    pub fn new(url: &str, cause: String, ca_source: &str, answered: bool) -> Self {
        ConnectError {
            failure: classify(url, &cause, answered),
            url: url.to_string(),
            cause,
            ca_source: ca_source.to_string(),
        }
    }
}

/// Why a connection to kube9d failed, read from its root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// https:// to a plain-text server (a kube9d started with --insecure).
    NotTls,
    /// http:// to a TLS server.
    ServesTls,
    /// The certificate does not chain to the CA kube9ctl was given.
    UnknownCa,
    /// The certificate does not name the address dialed.
    WrongName,
    /// The certificate is outside its validity (or this machine's clock is).
    Expired,
    /// The connection broke after kube9d had answered.
    Lost,
    /// Nothing answered (refused, timed out, no route, ...).
    Unreachable,
}

/// The one place that maps a root cause's text to a [`Failure`]. The texts are rustls's
/// (`InvalidContentType`, `InvalidCertificate(UnknownIssuer)`, ...), h2's and hyper's, as
/// they reach kube9ctl through tonic; the unit tests hold the ones seen against a real kube9d.
pub fn classify(url: &str, cause: &str, answered: bool) -> Failure {
    let has = |needles: &[&str]| needles.iter().any(|n| cause.contains(n));
    let https = url.starts_with("https://");
    if https && has(&["InvalidContentType", "corrupt message"]) {
        Failure::NotTls
    } else if has(&["UnknownIssuer", "BadSignature"]) {
        Failure::UnknownCa
    } else if has(&["NotValidForName", "not valid for name"]) {
        Failure::WrongName
    } else if has(&[
        "Expired",
        "NotValidYet",
        "certificate expired",
        "not valid yet",
    ]) {
        Failure::Expired
    } else if answered {
        Failure::Lost
    } else if !https && !has(&["refused"]) && tls_refused_plain_text(cause) {
        Failure::ServesTls
    } else {
        Failure::Unreachable
    }
}

/// Whether `cause` is what a TLS port answers to plain-text HTTP/2: the TLS alert read as an
/// HTTP/2 frame (`frame with invalid size`), or the connection dropped under the request.
fn tls_refused_plain_text(cause: &str) -> bool {
    [
        "frame",
        "reset",
        "h2 protocol",
        "connection closed",
        "transport error",
        "broken pipe",
    ]
    .iter()
    .any(|m| cause.contains(m))
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (url, cause) = (&self.url, &self.cause);
        let address = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        let ca = match self.ca_source.as_str() {
            "" => "the configured CA".to_string(),
            source => format!("the CA in {source}"),
        };
        match self.failure {
            Failure::NotTls => write!(
                f,
                "kube9d at {url} does not speak TLS (started with --insecure?): use http://{address} ({cause})"
            ),
            Failure::ServesTls => write!(
                f,
                "kube9d at {url} serves TLS: use https://{address} (or no scheme) ({cause})"
            ),
            Failure::UnknownCa => write!(
                f,
                "kube9d's certificate at {url} is not signed by {ca} ({cause}): give the CA of the kube9d at that address (its <data-dir>/tls/ca.crt)"
            ),
            Failure::WrongName => write!(
                f,
                "kube9d's certificate at {url} does not name the address dialed ({cause}): dial a name it lists, or restart kube9d with --tls-san for this one"
            ),
            Failure::Expired => write!(
                f,
                "kube9d's certificate at {url} is not valid now ({cause}): check this machine's clock, or restart kube9d to renew its certificate"
            ),
            Failure::Lost => write!(
                f,
                "lost the connection to kube9d at {url}: {cause} (is kube9d still running?)"
            ),
            Failure::Unreachable => write!(
                f,
                "cannot reach kube9d at {url}: {cause} (is kube9d running? set --server or KUBE9_SERVER)"
            ),
        }
    }
}

/// The failure was already printed (one line per failed object); just exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("some operations failed")]
pub struct Reported;

/// A remote command ended with a non-zero exit code: kube9ctl exits with it too, as
/// `kubectl exec` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("command terminated with exit code {0}")]
pub struct ExitStatus(pub i32);

impl ExitStatus {
    /// The exit code of `err`: the remote command's for an [`ExitStatus`], 1 otherwise.
    pub fn code_of(err: &anyhow::Error) -> u8 {
        match err.downcast_ref::<ExitStatus>() {
            Some(ExitStatus(code)) => u8::try_from(*code).ok().filter(|c| *c != 0).unwrap_or(1),
            None => 1,
        }
    }
}

/// The gRPC code as a word: `NotFound`, `AlreadyExists`, `InvalidArgument`, ...
pub fn code_name(code: tonic::Code) -> String {
    format!("{code:?}")
}

/// Whether `err` is (or wraps) a NotFound from the server.
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.downcast_ref::<ServerError>()
        .is_some_and(ServerError::is_not_found)
}

/// The text printed on stderr for `err`.
pub fn render(err: &anyhow::Error) -> Option<String> {
    if err.downcast_ref::<Reported>().is_some() {
        return None;
    }
    if let Some(server) = err.downcast_ref::<ServerError>() {
        return Some(server.to_string());
    }
    Some(format!("error: {}", Chain(err)))
}

/// Prints `err` on stderr.
pub fn report(err: &anyhow::Error) {
    if let Some(text) = render(err) {
        eprintln!("{text}");
    }
}

/// `context: cause: root cause`, without repeating a cause its context already quotes.
struct Chain<'a>(&'a anyhow::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous = String::new();
        for (i, cause) in self.0.chain().enumerate() {
            let text = cause.to_string();
            if i > 0 {
                if previous.ends_with(&text) {
                    continue;
                }
                f.write_str(": ")?;
            }
            f.write_str(&text)?;
            previous = text;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn server_errors_print_kubectl_style() {
        let err = anyhow::Error::new(ServerError {
            code: tonic::Code::NotFound,
            message: "pod \"x\" not found".into(),
        });
        assert_eq!(
            render(&err).unwrap(),
            "Error from server (NotFound): pod \"x\" not found"
        );
        assert!(is_not_found(&err));
        let err = anyhow::Error::new(ServerError {
            code: tonic::Code::AlreadyExists,
            message: "node \"n1\" already exists".into(),
        });
        assert_eq!(
            render(&err).unwrap(),
            "Error from server (AlreadyExists): node \"n1\" already exists"
        );
    }

    #[test]
    fn other_errors_carry_their_context() {
        let err = Err::<(), _>(std::io::Error::other("No such file or directory"))
            .context("cannot read pods.yaml")
            .unwrap_err();
        assert_eq!(
            render(&err).unwrap(),
            "error: cannot read pods.yaml: No such file or directory"
        );
        let err = anyhow::Error::new(ConnectError::new(
            "http://127.0.0.1:7209",
            "Connection refused (os error 111)".into(),
            "",
            false,
        ));
        assert_eq!(
            render(&err).unwrap(),
            "error: cannot reach kube9d at http://127.0.0.1:7209: Connection refused (os error 111) \
             (is kube9d running? set --server or KUBE9_SERVER)"
        );
        assert_eq!(render(&anyhow::Error::new(Reported)), None);
    }
}

#[cfg(test)]
mod connect_tests {
    use super::*;

    /// Root causes as kube9ctl saw them against a real kube9d (rustls 0.23, h2 0.4, hyper 1).
    const NOT_TLS: &str = "received corrupt message of type InvalidContentType";
    const OTHER_CA: &str = "invalid peer certificate: BadSignature";
    const NO_CA: &str = "invalid peer certificate: UnknownIssuer";
    const WRONG_NAME: &str = "invalid peer certificate: certificate not valid for name \"127.0.0.2\"; certificate is only valid for IpAddress(127.0.0.1) or DnsName(\"localhost\")";
    const EXPIRED: &str = "invalid peer certificate: certificate expired: verification time 1800000000 (UNIX), but certificate is not valid after 1700000000 (100000000 seconds ago)";
    const TLS_ANSWER: [&str; 4] = [
        "connection error detected: frame with invalid size",
        "stream closed because of a broken pipe",
        "connection closed",
        "Connection reset by peer (os error 104)",
    ];
    const REFUSED: &str = "Connection refused (os error 111)";

    fn text(url: &str, cause: &str) -> String {
        ConnectError::new(url, cause.into(), "--certificate-authority /ca.crt", false).to_string()
    }

    #[test]
    fn causes_map_to_failures() {
        let https = "https://h:1";
        let http = "http://h:1";
        assert_eq!(classify(https, NOT_TLS, false), Failure::NotTls);
        assert_eq!(classify(https, OTHER_CA, false), Failure::UnknownCa);
        assert_eq!(classify(https, NO_CA, false), Failure::UnknownCa);
        assert_eq!(classify(https, WRONG_NAME, false), Failure::WrongName);
        assert_eq!(
            classify(https, "invalid peer certificate: NotValidForName", false),
            Failure::WrongName
        );
        assert_eq!(classify(https, EXPIRED, false), Failure::Expired);
        for cause in TLS_ANSWER {
            assert_eq!(classify(http, cause, false), Failure::ServesTls, "{cause}");
            // Once kube9d has answered in plain text, a broken connection is only that.
            assert_eq!(classify(http, cause, true), Failure::Lost, "{cause}");
            assert_eq!(
                classify(https, cause, false),
                Failure::Unreachable,
                "{cause}"
            );
        }
        assert_eq!(classify(http, REFUSED, false), Failure::Unreachable);
        assert_eq!(classify(https, REFUSED, false), Failure::Unreachable);
        assert_eq!(
            classify(https, "deadline has elapsed", false),
            Failure::Unreachable
        );
    }

    #[test]
    fn each_failure_says_what_to_change() {
        assert_eq!(
            text("https://h:1", NOT_TLS),
            format!("kube9d at https://h:1 does not speak TLS (started with --insecure?): use http://h:1 ({NOT_TLS})")
        );
        assert_eq!(
            text("http://h:1", TLS_ANSWER[0]),
            format!(
                "kube9d at http://h:1 serves TLS: use https://h:1 (or no scheme) ({})",
                TLS_ANSWER[0]
            )
        );
        let t = text("https://h:1", OTHER_CA);
        assert!(
            t.starts_with("kube9d's certificate at https://h:1 is not signed by the CA in --certificate-authority /ca.crt (invalid peer certificate: BadSignature)"),
            "{t}"
        );
        let t = text("https://h:1", WRONG_NAME);
        assert!(
            t.contains("does not name the address") && t.contains("--tls-san"),
            "{t}"
        );
        let t = text("https://h:1", EXPIRED);
        assert!(t.contains("clock"), "{t}");
        let t = ConnectError::new("http://h:1", TLS_ANSWER[1].into(), "", true).to_string();
        assert!(
            t.starts_with("lost the connection to kube9d at http://h:1"),
            "{t}"
        );
        let t = text("https://h:1", REFUSED);
        assert!(
            t.starts_with("cannot reach kube9d at https://h:1: Connection refused"),
            "{t}"
        );
        let t = ConnectError::new("https://h:1", NO_CA.into(), "", false).to_string();
        assert!(t.contains("is not signed by the configured CA ("), "{t}");
    }
}
