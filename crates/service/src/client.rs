//! How Drover's processes call each other: HTTPS trusting the configured CA when TLS is on, and
//! the internal client's credentials when authentication is on.

use crate::auth::internal_headers;
use crate::tls::TlsConfig;

#[derive(Debug, Clone, Default)]
pub struct InternalClient {
    pub tls: TlsConfig,
    /// `user:password` of the internal client, when authentication is on.
    pub credentials: Option<String>,
}

impl InternalClient {
    /// A client builder with both; callers add their timeouts.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        // The CA file was read once at start (`check`); a failure here is a file changed since.
        let builder = self.tls.client_builder().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot use tls.ca_file; trusting the system's roots only");
            reqwest::Client::builder().use_rustls_tls()
        });
        builder.default_headers(internal_headers(self.credentials.as_deref()))
    }

    /// Reads the CA file once, so that a bad one stops the server at start with its reason.
    pub fn check(&self) -> anyhow::Result<()> {
        self.tls.client_builder().map(|_| ())
    }
}
