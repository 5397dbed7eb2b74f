//! The `[ingestion]` settings overlord and middle manager share (what batch tasks may read; see
//! `drover_ingest::input_policy`), as flags and environment variables. The variables have no
//! server prefix on purpose: one setting covers both servers on a host.

use serde::Serialize;

#[derive(Debug, Default, clap::Args, Serialize)]
pub struct IngestionOverrides {
    /// Directories `local` inputs may be read from, comma-separated (default: any but /etc,
    /// /proc, /sys, /dev, /boot, /root, /run).
    #[arg(
        long = "ingestion-local-allowed-dirs",
        env = "DROVER_INGESTION_LOCAL_ALLOWED_DIRS",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_allowed_dirs: Option<Vec<String>>,
    /// Protocols `http` inputs may use (Druid's druid.ingestion.http.allowedProtocols).
    #[arg(
        long = "ingestion-http-allowed-protocols",
        env = "DROVER_INGESTION_HTTP_ALLOWED_PROTOCOLS",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_allowed_protocols: Option<Vec<String>>,
    /// Hosts, addresses or networks `http` inputs may reach (default: any but loopback,
    /// link-local, unspecified and multicast addresses).
    #[arg(
        long = "ingestion-http-allowed-hosts",
        env = "DROVER_INGESTION_HTTP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_allowed_hosts: Option<Vec<String>>,
}
