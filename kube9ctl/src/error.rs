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
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (url, cause) = (&self.url, &self.cause);
        let plain = url.strip_prefix("https://").unwrap_or(url);
        let source = match self.ca_source.as_str() {
            "" => "the configured CA",
            s => s,
        };
        if cause.contains("InvalidContentType") || cause.contains("corrupt message") {
            write!(f, "kube9d at {url} does not speak TLS (started with --insecure?): use http://{plain} ({cause})")
        } else if cause.contains("UnknownIssuer") || cause.contains("BadSignature") {
            write!(f, "kube9d's certificate at {url} is not signed by the CA in {source}: is this the cluster the client config names? ({cause})")
        } else if cause.contains("NotValidForName") {
            write!(f, "kube9d's certificate at {url} does not name that address: dial an address it serves, or start kube9d with --tls-san for it ({cause})")
        } else if url.starts_with("http://") && plain_text_refused(cause) {
            write!(f, "kube9d at {url} did not answer in plain text; it serves TLS unless started with --insecure: use https:// (or no scheme) ({cause})")
        } else {
            write!(f, "cannot reach kube9d at {url}: {cause} (is kube9d running? set --server or KUBE9_SERVER)")
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

/// Whether `cause` is what a TLS port answers to plain text (not a port nobody listens on).
fn plain_text_refused(cause: &str) -> bool {
    !cause.contains("refused")
        && [
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

#[cfg(test)]
mod connect_tests {
    use super::ConnectError;

    fn text(url: &str, cause: &str) -> String {
        ConnectError {
            url: url.into(),
            cause: cause.into(),
            ca_source: "the client config /c".into(),
        }
        .to_string()
    }

    #[test]
    fn tls_failures_say_what_to_change() {
        let t = text(
            "https://h:1",
            "received corrupt message of type InvalidContentType",
        );
        assert!(
            t.contains("does not speak TLS") && t.contains("use http://h:1"),
            "{t}"
        );
        let t = text("https://h:1", "invalid peer certificate: UnknownIssuer");
        assert!(
            t.contains("not signed by the CA in the client config /c"),
            "{t}"
        );
        let t = text("https://h:1", "invalid peer certificate: NotValidForName");
        assert!(t.contains("--tls-san"), "{t}");
        let t = text("http://h:1", "connection reset by peer");
        assert!(
            t.contains("serves TLS") && t.contains("use https://"),
            "{t}"
        );
        let t = text("https://h:1", "Connection refused (os error 111)");
        assert!(t.starts_with("cannot reach kube9d at https://h:1"), "{t}");
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
        let err = anyhow::Error::new(ConnectError {
            url: "http://127.0.0.1:7209".into(),
            cause: "Connection refused (os error 111)".into(),
            ca_source: String::new(),
        });
        assert_eq!(
            render(&err).unwrap(),
            "error: cannot reach kube9d at http://127.0.0.1:7209: Connection refused (os error 111) \
             (is kube9d running? set --server or KUBE9_SERVER)"
        );
        assert_eq!(render(&anyhow::Error::new(Reported)), None);
    }
}
