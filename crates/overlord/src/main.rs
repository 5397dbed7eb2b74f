use clap::Parser;
use drover_overlord::config::{Cli, OverlordConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = OverlordConfig::load(&cli)?;
    drover_service::init_logging(config.log_json);
    drover_overlord::run(config, drover_service::shutdown_signal()).await
}
