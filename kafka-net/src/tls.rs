//! TLS with rustls: a custom CA (or the Mozilla roots), an optional client certificate,
//! and an optional server name override.
//!
//! The handshake is behind the `tls` feature (on by default). Without it the
//! settings still exist, but a config that sets them fails
//! [`ClientConfig::validate`](crate::ClientConfig::validate) with an error naming the
//! feature.

#[cfg(feature = "tls")]
use crate::error::{Error, ErrorKind, Result};
#[cfg(feature = "tls")]
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::fmt;
#[cfg(feature = "tls")]
use std::sync::Arc;
#[cfg(feature = "tls")]
use tokio::net::TcpStream;
#[cfg(feature = "tls")]
use tokio_rustls::client::TlsStream;
#[cfg(feature = "tls")]
use tokio_rustls::TlsConnector;

/// TLS settings (`security.protocol=SSL`); connecting with them needs the `tls`
/// feature (on by default).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TlsConfig {
    /// `ssl.ca.location`: PEM certificates to trust. Default: the Mozilla root set.
    pub ca_pem: Option<Vec<u8>>,
    /// `ssl.certificate.location`: PEM client certificate chain, with `client_key_pem`.
    pub client_cert_pem: Option<Vec<u8>>,
    /// `ssl.key.location`: PEM private key of the client certificate.
    pub client_key_pem: Option<Vec<u8>>,
    /// The name to verify the broker's certificate against, instead of the host name
    /// being connected to (`ssl.endpoint.identification` with an override).
    pub server_name: Option<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "<pem>"),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "***"),
            )
            .field("server_name", &self.server_name)
            .finish()
    }
}

#[cfg(feature = "tls")]
fn tls_err(what: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Tls(what.to_string()))
}

impl TlsConfig {
    /// Trusts the CA certificates in `pem`.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Verifies the broker's certificate against `name`.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Presents a client certificate.
    pub fn with_client_cert(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_cert_pem = Some(cert_pem.into());
        self.client_key_pem = Some(key_pem.into());
        self
    }

    #[cfg(feature = "tls")]
    pub(crate) fn connector(&self) -> Result<TlsConnector> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert = cert.map_err(|e| tls_err(format!("reading CA PEM: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| tls_err(format!("adding CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(tls_err("the CA PEM holds no certificate"));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_root_certificates(roots);
        let config = match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(cert), Some(key)) => {
                let certs: Vec<CertificateDer<'static>> =
                    rustls_pemfile::certs(&mut cert.as_slice())
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|e| tls_err(format!("reading client certificate PEM: {e}")))?;
                let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key.as_slice())
                    .map_err(|e| tls_err(format!("reading client key PEM: {e}")))?
                    .ok_or_else(|| tls_err("the client key PEM holds no private key"))?;
                builder.with_client_auth_cert(certs, key).map_err(tls_err)?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(tls_err(
                    "a client certificate needs both certificate and key",
                ))
            }
        };
        Ok(TlsConnector::from(Arc::new(config)))
    }

    #[cfg(feature = "tls")]
    pub(crate) async fn connect(&self, host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>> {
        let connector = self.connector()?;
        let name = self.server_name.as_deref().unwrap_or(host).to_string();
        let server_name = ServerName::try_from(name.clone())
            .map_err(|e| tls_err(format!("server name {name:?}: {e}")))?;
        connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| tls_err(format!("handshake with {host}: {e}")))
    }
}
