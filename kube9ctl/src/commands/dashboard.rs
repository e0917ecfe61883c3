//! `kube9ctl dashboard [--role admin|viewer] [--ttl 12h] [--url URL]`: a sign-in link for the
//! web dashboard kube9d serves. It makes a token for the purpose (listed by `token list` as
//! "dashboard sign-in", revoked with `token delete`) and puts it in the link's fragment, which
//! the browser never sends to a server: the page reads it, signs in, and drops it from the
//! address bar.

use kube9_proto::client::Role;
use kube9_proto::pb;

use crate::cli::DashboardArgs;
use crate::commands::Context;
use crate::output::emit;

pub async fn run(ctx: &Context, args: DashboardArgs) -> anyhow::Result<()> {
    if args.role == Role::Node {
        anyhow::bail!(
            "--role node: a node token does not sign in to the dashboard (admin or viewer)"
        );
    }
    if args.ttl.is_zero() {
        anyhow::bail!("--ttl 0: a sign-in link's token must expire (e.g. --ttl 12h)");
    }
    let url = base_url(&args.url)?;
    let mut c = ctx.connect().await?;
    let request = pb::CreateTokenRequest {
        role: args.role.to_string(),
        ttl_seconds: i64::try_from(args.ttl.as_secs()).unwrap_or(i64::MAX),
        description: "dashboard sign-in".into(),
    };
    let result = c.client.create_token(request).await;
    let created = c.check(result)?;
    let id = created
        .token
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "Open this link to sign in ({} token {id}, valid {}; `kube9ctl token delete {id}` revokes it):",
        args.role,
        crate::output::time::duration(args.ttl.as_millis() as i64)
    );
    emit(&format!("{url}#token={}\n", created.token))
}

/// The dashboard's URL, ending in `/`, without a fragment.
fn base_url(url: &str) -> anyhow::Result<String> {
    let url = url.split('#').next().unwrap_or(url);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        anyhow::bail!("--url {url}: give the dashboard's address as http://HOST:PORT/");
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            base_url("http://127.0.0.1:7210").unwrap(),
            "http://127.0.0.1:7210/"
        );
        assert_eq!(base_url("http://h:1/#token=x").unwrap(), "http://h:1/");
        assert!(base_url("127.0.0.1:7210").is_err());
    }
}
