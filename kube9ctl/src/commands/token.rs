//! `kube9ctl token list|create|delete|join-command`, in the spirit of `kubeadm token`.

use std::time::Duration;

use kube9_proto::client::Role;
use kube9_proto::pb;
use serde::Serialize;

use crate::cli::{Format, TokenCommand, TokenCreateArgs, TokenLifetime};
use crate::commands::Context;
use crate::error::Reported;
use crate::output::{emit, listing::encode, table, time};

pub async fn run(ctx: &Context, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::List => list(ctx).await,
        TokenCommand::Create(args) => create(ctx, args).await,
        TokenCommand::Delete { ids } => delete(ctx, &ids).await,
        TokenCommand::JoinCommand(lifetime) => {
            let args = TokenCreateArgs {
                role: Role::Node,
                lifetime,
                print_join_command: true,
            };
            create(ctx, args).await
        }
    }
}

/// A token as `-o json|yaml` shows it: never its secret.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenView {
    id: String,
    role: String,
    created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used: Option<String>,
}

impl From<&pb::TokenInfo> for TokenView {
    fn from(t: &pb::TokenInfo) -> Self {
        let when = |ms: i64| (ms > 0).then(|| time::rfc3339(ms)).flatten();
        TokenView {
            id: t.id.clone(),
            role: t.role.clone(),
            created: when(t.created_ms),
            expires: when(t.expires_ms),
            description: t.description.clone(),
            last_used: when(t.last_used_ms),
        }
    }
}

async fn list(ctx: &Context) -> anyhow::Result<()> {
    let mut c = ctx.connect().await?;
    let result = c.client.list_tokens(pb::ListTokensRequest {}).await;
    let tokens = c.check(result)?.tokens;
    emit(&render(&tokens, ctx.format(), time::now_ms())?)
}

fn render(tokens: &[pb::TokenInfo], format: Format, now: i64) -> anyhow::Result<String> {
    match format {
        Format::Json | Format::Yaml => {
            let views: Vec<TokenView> = tokens.iter().map(TokenView::from).collect();
            encode(&views, format)
        }
        Format::Name => Ok(tokens.iter().map(|t| format!("token/{}\n", t.id)).collect()),
        Format::Table | Format::Wide => {
            let rows = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.role.clone(),
                        time::age(now, t.created_ms),
                        expires(now, t.expires_ms),
                        t.description.clone(),
                        match t.last_used_ms {
                            0 => "<never>".into(),
                            ms => format!("{} ago", time::age(now, ms)),
                        },
                    ]
                })
                .collect();
            Ok(table::render(
                &["ID", "ROLE", "AGE", "EXPIRES", "DESCRIPTION", "LAST USED"],
                rows,
            ))
        }
    }
}

fn expires(now: i64, at: i64) -> String {
    match at {
        0 => "<never>".into(),
        at if at <= now => "expired".into(),
        at => format!("in {}", time::duration(at - now)),
    }
}

async fn create(ctx: &Context, args: TokenCreateArgs) -> anyhow::Result<()> {
    let TokenLifetime { ttl, description } = args.lifetime;
    if args.print_join_command && args.role != Role::Node {
        anyhow::bail!(
            "--print-join-command is for node tokens; a {} token does not join nodes (use --role node)",
            args.role
        );
    }
    let mut c = ctx.connect().await?;
    let request = pb::CreateTokenRequest {
        role: args.role.to_string(),
        ttl_seconds: ttl_seconds(ttl),
        description,
    };
    let result = c.client.create_token(request).await;
    let created = c.check(result)?;
    let line = if args.print_join_command {
        join_command(
            &c.url,
            &created.token,
            &created.ca_cert_hash,
            &created.cluster_id,
        )
    } else {
        created.token
    };
    emit(&format!("{line}\n"))
}

/// `--ttl` as the wire counts it: whole seconds, 0 for never.
fn ttl_seconds(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)
}

/// `kube9-node --server HOST:PORT --token T --ca-cert-hash sha256:…` for the kube9d at `url`
/// (the address kube9ctl dialed, so a node that can reach it the same way joins with the line
/// as it is). A kube9d serving plain text has no CA to pin: `http://` and `--insecure` then.
/// kube9-node needs a `--name`, which only the person running it can choose: `NODE` marks it.
/// The agent's cluster id must be kube9d's: named unless it is the default.
pub fn join_command(url: &str, token: &str, ca_hash: &str, cluster_id: &str) -> String {
    let host_port = host_port(url);
    let cluster = match cluster_id {
        "" | "kube9" => String::new(),
        id => format!(" --cluster-id {id}"),
    };
    if ca_hash.is_empty() {
        format!("kube9-node --server http://{host_port} --insecure --token {token}{cluster} --name NODE")
    } else {
        format!(
            "kube9-node --server {host_port} --token {token} --ca-cert-hash {ca_hash}{cluster} --name NODE"
        )
    }
}

/// `host:port` of a URL `https://host:port[/...]`.
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

async fn delete(ctx: &Context, ids: &[String]) -> anyhow::Result<()> {
    let mut c = ctx.connect().await?;
    let mut failed = false;
    for given in ids {
        // A whole token names its id before the dot; only the id leaves this machine.
        let id = given.split_once('.').map_or(given.as_str(), |(id, _)| id);
        let result = c
            .client
            .delete_token(pb::DeleteTokenRequest { id: id.into() })
            .await;
        match c.check(result) {
            Ok(_) => emit(&match ctx.format() {
                Format::Name => format!("token/{id}\n"),
                _ => format!("token \"{id}\" deleted\n"),
            })?,
            Err(e) => {
                crate::error::report(&e);
                failed = true;
            }
        }
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_join_command_pins_the_ca_or_says_insecure() {
        assert_eq!(
            join_command("https://10.0.0.1:7209", "abcdef.00", "sha256:ff", "kube9"),
            "kube9-node --server 10.0.0.1:7209 --token abcdef.00 --ca-cert-hash sha256:ff --name NODE"
        );
        assert_eq!(
            join_command("https://[fd00::2]:7300/", "abcdef.00", "sha256:ff", "lab"),
            "kube9-node --server [fd00::2]:7300 --token abcdef.00 --ca-cert-hash sha256:ff --cluster-id lab --name NODE"
        );
        assert_eq!(
            join_command("http://10.0.0.1:7209", "abcdef.00", "", ""),
            "kube9-node --server http://10.0.0.1:7209 --insecure --token abcdef.00 --name NODE"
        );
    }

    #[test]
    fn ttls_go_on_the_wire_in_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::ZERO), 0);
        assert_eq!(ttl_seconds(Duration::from_secs(86_400)), 86_400);
        assert_eq!(ttl_seconds(Duration::MAX), i64::MAX);
    }

    #[test]
    fn the_expiry_column_says_never_expired_or_when() {
        assert_eq!(expires(1000, 0), "<never>");
        assert_eq!(expires(1000, 1000), "expired");
        assert_eq!(expires(0, 30 * 60_000), "in 30m");
    }

    #[test]
    fn the_table_shows_roles_expiry_and_use_never_secrets() {
        let now = 10_000_000;
        let tokens = vec![
            pb::TokenInfo {
                id: "abcdef".into(),
                role: "viewer".into(),
                created_ms: now - 120_000,
                expires_ms: now + 3_600_000,
                description: "ci".into(),
                last_used_ms: now - 5_000,
            },
            pb::TokenInfo {
                id: "zzzzzz".into(),
                role: "node".into(),
                created_ms: now - 1000,
                ..Default::default()
            },
        ];
        let text = render(&tokens, Format::Table, now).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID "), "{text}");
        assert!(
            lines[1].contains("viewer") && lines[1].contains("in 1h"),
            "{text}"
        );
        assert!(lines[1].contains("5s ago"), "{text}");
        assert!(lines[2].contains("<never>"), "{text}");
        let json = render(&tokens, Format::Json, now).unwrap();
        assert!(
            json.contains("\"role\": \"viewer\"") && !json.contains("secret"),
            "{json}"
        );
        assert_eq!(
            render(&tokens, Format::Name, now).unwrap(),
            "token/abcdef\ntoken/zzzzzz\n"
        );
    }
}
