//! One file per subcommand; [`run`] dispatches a parsed command line to it.

pub mod apply;
pub mod create;
pub mod delete;
pub mod describe;
pub mod exec;
pub mod get;
pub mod logs;
pub mod node;
pub mod version;

use crate::cli::{Cli, Command, Format};
use crate::client::Client;

/// What every command needs besides its own arguments.
#[derive(Debug, Clone)]
pub struct Context {
    pub server: String,
    pub output: Option<Format>,
}

impl Context {
    /// Dials kube9d.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        Client::connect(&self.server).await
    }

    /// The `-o` format, `table` when not given.
    pub fn format(&self) -> Format {
        self.output.unwrap_or(Format::Table)
    }
}

/// Runs one command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context {
        server: cli.server,
        output: cli.output,
    };
    match cli.command {
        Command::Apply(args) => apply::run(&ctx, args).await,
        Command::Create(args) => create::run(&ctx, args).await,
        Command::Get(args) => get::run(&ctx, args).await,
        Command::Describe(args) => describe::run(&ctx, args).await,
        Command::Delete(args) => delete::run(&ctx, args).await,
        Command::Logs(args) => logs::run(&ctx, args).await,
        Command::Exec(args) => exec::run(&ctx, args).await,
        Command::Node(args) => node::run(&ctx, args).await,
        Command::Version => version::run(&ctx),
    }
}

/// The name given either as `KIND/NAME` or as a separate argument, not both.
pub fn object_name(inline: Option<&str>, separate: Option<&str>) -> anyhow::Result<Option<String>> {
    match (inline, separate) {
        (Some(a), Some(b)) => anyhow::bail!(
            "there is no need to give the name twice: {a:?} and {b:?} (use KIND NAME or KIND/NAME)"
        ),
        (a, b) => Ok(a.or(b).map(str::to_string)),
    }
}
