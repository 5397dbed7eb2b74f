//! TLS (rustls) for every HTTP server and the clients Drover's processes call each other with.
//! `[tls] cert_file` and `key_file` (PEM) make a server answer HTTPS only and advertise
//! `https://` (the overlord's leader URL, the middle manager's worker `scheme`, a peon's
//! `tlsPort`); `ca_file` is the certificate authority the clients trust besides the usual
//! roots, so a private CA works. Clients always verify certificates.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// The environment variable a middle manager hands its TLS settings to its peons in (JSON).
pub const TLS_ENV: &str = "DROVER_TLS";

/// The `[tls]` table of every server's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM); with `key_file`, the server speaks HTTPS only.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// A CA certificate (PEM) the clients trust besides the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }

    pub fn scheme(&self) -> &'static str {
        if self.enabled() {
            "https"
        } else {
            "http"
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.cert_file.is_some() == self.key_file.is_some(),
            "tls.cert_file and tls.key_file go together"
        );
        Ok(())
    }

    /// The TLS settings a middle manager handed its peon (none: plain HTTP).
    pub fn from_env() -> TlsConfig {
        std::env::var(TLS_ENV)
            .ok()
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default()
    }

    /// The acceptor a TLS server wraps its connections in; `None` without a certificate.
    pub fn acceptor(&self) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
        let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) else {
            return Ok(None);
        };
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("tls.key_file {}: no private key read", key.display()))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("tls.cert_file and tls.key_file do not make a certificate")?;
        Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    /// A client builder that trusts `ca_file` as well as the usual roots (and verifies).
    pub fn client_builder(&self) -> anyhow::Result<reqwest::ClientBuilder> {
        let mut builder = reqwest::Client::builder().use_rustls_tls();
        if let Some(ca) = &self.ca_file {
            for cert in certificates(ca)? {
                let cert = reqwest::Certificate::from_der(&cert)
                    .with_context(|| format!("tls.ca_file {}", ca.display()))?;
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(builder)
    }
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

/// `[tls]` as flags and environment variables, the same names for every server.
#[derive(Debug, Default, clap::Args, Serialize)]
pub struct TlsOverrides {
    #[arg(long = "tls-cert-file", env = "DROVER_TLS_CERT_FILE")]
    #[serde(rename = "cert_file", skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[arg(long = "tls-key-file", env = "DROVER_TLS_KEY_FILE")]
    #[serde(rename = "key_file", skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    #[arg(long = "tls-ca-file", env = "DROVER_TLS_CA_FILE")]
    #[serde(rename = "ca_file", skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}
