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

    /// A client builder for plain-HTTP peers only: the same credentials, but without the
    /// system's root certificates, whose loading (every file under `/etc/ssl/certs`) takes a
    /// few milliseconds — at the start of every peon. It still verifies any HTTPS peer,
    /// against the built-in roots only; use [`Self::builder`] for those.
    pub fn plain_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_native_certs(false)
            .default_headers(internal_headers(self.credentials.as_deref()))
    }

    /// Whether this process is set up for HTTPS peers (a CA of its own, or a certificate).
    pub fn speaks_tls(&self) -> bool {
        self.tls.enabled() || self.tls.ca_file.is_some()
    }

    /// Reads the CA file once, so that a bad one stops the server at start with its reason.
    pub fn check(&self) -> anyhow::Result<()> {
        self.tls.client_builder().map(|_| ())
    }
}
