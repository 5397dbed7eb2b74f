//! `drover`: the command-line client of an overlord. Submits and watches tasks (with a progress
//! bar of rows from the task's live report), follows logs, manages supervisors and lists data
//! sources and workers, over the same HTTP API as Druid's, so it works against Druid too.

mod client;
mod output;
mod settings;
mod task;
mod views;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::Overlord;
use crate::output::Output;

#[derive(Parser)]
#[command(
    name = "drover",
    version,
    about = "Talk to a Drover (or Druid) overlord"
)]
struct Cli {
    /// The overlord's URL [env: DROVER_URL] [default: http://localhost:8090]; a follower
    /// redirects to the leader.
    #[arg(long, global = true)]
    url: Option<String>,
    /// User for HTTP Basic authentication [env: DROVER_USER].
    #[arg(long, global = true)]
    user: Option<String>,
    /// Its password [env: DROVER_PASSWORD].
    #[arg(long, global = true)]
    password: Option<String>,
    /// PEM file of the CA the servers' certificates are signed by [env: DROVER_CA_FILE].
    #[arg(long, global = true)]
    ca_file: Option<PathBuf>,
    /// TOML file with `url`, `user`, `password`, `ca_file` [env: DROVER_CONFIG]
    /// [default: ~/.config/drover/cli.toml when it exists].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// `table` for people, `json` for scripts.
    #[arg(long, short, global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tasks: submit, watch, list, logs, reports, shut down.
    #[command(subcommand)]
    Task(task::TaskCommand),
    /// Kafka supervisors.
    #[command(subcommand)]
    Supervisor(views::SupervisorCommand),
    /// Data sources and their segments.
    #[command(subcommand)]
    Datasource(views::DatasourceCommand),
    /// Middle managers and the dynamic worker config.
    #[command(subcommand)]
    Worker(views::WorkerCommand),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // `drover task list | head`: when the reader goes away, end quietly as Unix tools do, not
    // with a panic about a broken pipe (Rust ignores SIGPIPE by default).
    // SAFETY: setting a signal's disposition to its default, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("drover: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = settings::load(
        cli.config,
        settings::Overrides {
            url: cli.url,
            user: cli.user,
            password: cli.password,
            ca_file: cli.ca_file,
        },
    )?;
    let overlord = Overlord::new(&settings)?;
    match cli.command {
        Command::Task(c) => task::run(&overlord, cli.output, c).await,
        Command::Supervisor(c) => views::supervisor(&overlord, cli.output, c).await,
        Command::Datasource(c) => views::datasource(&overlord, cli.output, c).await,
        Command::Worker(c) => views::worker(&overlord, cli.output, c).await,
    }
}
