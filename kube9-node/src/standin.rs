//! The built-in stand-in for a container that has no command.
//!
//! Pods are often written with only an image (`nginx`), and Kube-9 runs no images: the agent
//! starts itself as `kube9-node standin --image IMAGE -- ARGS...` instead, a long-lived process
//! that says what it stands for, then waits for SIGTERM or SIGINT like a well-behaved server.

use std::future::Future;
use std::io::{self, Write};

/// The line printed when the stand-in starts.
pub fn start_line(image: &str, args: &[String]) -> String {
    if args.is_empty() {
        format!("kube9 stand-in for image {image} started")
    } else {
        format!(
            "kube9 stand-in for image {image} started with args: {}",
            args.join(" ")
        )
    }
}

/// The line printed when the stand-in stops.
pub fn stop_line(image: &str) -> String {
    format!("kube9 stand-in for image {image} stopping")
}

/// Prints the start line to `out`, waits for `stop` (SIGTERM/SIGINT in the binary), prints the
/// stop line. The caller exits 0 afterwards.
pub async fn run<W, F>(image: &str, args: &[String], stop: F, mut out: W) -> io::Result<()>
where
    W: Write,
    F: Future,
{
    writeln!(out, "{}", start_line(image, args))?;
    out.flush()?;
    stop.await;
    writeln!(out, "{}", stop_line(image))?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_standin_announces_itself_and_stops_when_told() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut out = Vec::new();
        tx.send(()).unwrap();
        run("nginx", &["-p".into(), "80".into()], rx, &mut out)
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "kube9 stand-in for image nginx started with args: -p 80\n\
             kube9 stand-in for image nginx stopping\n"
        );
    }

    #[test]
    fn the_start_line_without_args_names_only_the_image() {
        assert_eq!(
            start_line("redis", &[]),
            "kube9 stand-in for image redis started"
        );
    }
}
