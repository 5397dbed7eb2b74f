//! What every Drover server process shares: layered configuration, logging and signal handling.

pub mod auth;
pub mod client;
pub mod http_server;
pub mod ingestion;
pub mod metrics;
pub mod object_storage;
pub mod openapi;
pub mod peon_launch;
pub mod status;
pub mod task_log_storage;
pub mod tls;

use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Builds a config from, lowest precedence first: built-in defaults, the TOML file (if given),
/// then overrides from flags and environment variables (clap fills those; unset ones are `None`
/// and skipped when serialized).
pub fn load_config<C, O>(defaults: C, file: Option<&Path>, overrides: &O) -> anyhow::Result<C>
where
    C: Serialize + DeserializeOwned,
    O: Serialize,
{
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(path) = file {
        if !path.exists() {
            anyhow::bail!("config file {} does not exist", path.display());
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(Serialized::defaults(overrides));
    figment
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

/// Readable logs by default, one JSON object per line with `json`. `RUST_LOG` refines the level.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,zookeeper_client=warn")
    });
    use std::io::IsTerminal;
    // Colours only on a terminal: log files stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, stopping"),
        _ = int.recv() => tracing::info!("SIGINT received, stopping"),
    }
}

/// Ends a server's `main`: on an error, one line on stderr with every cause that says something
/// (`error: cannot listen on 0.0.0.0:8090: Address already in use`), exit code 1, and no
/// backtrace whatever `RUST_BACKTRACE` says: start-up errors are the operator's, not a bug's.
pub fn exit_with(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let causes: Vec<String> = e
                .chain()
                .map(|c| c.to_string())
                .filter(|m| !m.trim().is_empty())
                .collect();
            eprintln!("error: {}", causes.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Binds the server's listener; with port 0 the kernel picks a free port, which the process
/// then advertises (and writes to `port_file`, when given, for whoever started it: tests bind
/// port 0 instead of guessing a free port and racing others for it).
pub async fn bind_listener(
    address: &str,
    port: u16,
    port_file: Option<&Path>,
) -> anyhow::Result<(tokio::net::TcpListener, u16)> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind((address, port))
        .await
        .with_context(|| format!("cannot listen on {address}:{port}"))?;
    let local = listener.local_addr()?;
    let port = local.port();
    if local.ip().is_unspecified() {
        // Drover has no authentication yet: say so where operators look.
        tracing::warn!(
            "listening on all interfaces ({address}:{port}) with no authentication: anyone who \
             can reach this port can submit, kill and configure; set bind_address to a private \
             address or keep the port behind a firewall"
        );
    }
    if let Some(file) = port_file {
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, port.to_string())
            .and_then(|()| std::fs::rename(&tmp, file))
            .with_context(|| format!("cannot write port_file {}", file.display()))?;
    }
    Ok((listener, port))
}

/// Raises the soft limit on open files to the hard limit, so connections, task logs and
/// ZooKeeper sockets do not run out at the distribution's default of 1,024.
pub fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let before = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                tracing::debug!(
                    before,
                    after = limit.rlim_cur,
                    "raised the open files limit"
                );
            }
        }
    }
}

/// The flags and variables every server takes the same way (`[ingestion]`, `[security]`,
/// `[tls]`): one setting covers every server on a host.
#[derive(Debug, Default, clap::Args, serde::Serialize)]
pub struct SharedOverrides {
    #[command(flatten)]
    pub ingestion: ingestion::IngestionOverrides,
    #[command(flatten)]
    pub security: auth::SecurityOverrides,
    #[command(flatten)]
    pub tls: tls::TlsOverrides,
}
