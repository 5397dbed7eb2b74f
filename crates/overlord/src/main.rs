use clap::Parser;
use drover_overlord::config::{Cli, OverlordConfig};

fn main() -> std::process::ExitCode {
    drover_service::exit_with(start())
}

#[tokio::main]
async fn start() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = OverlordConfig::load(&cli)?;
    drover_service::init_logging(config.log_json);
    drover_service::raise_open_files_limit();
    drover_overlord::run(config, drover_service::shutdown_signal()).await
}
