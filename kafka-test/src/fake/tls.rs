//! TLS for the fake cluster's listeners: rustls with the `ring` provider, TLS 1.2 and
//! 1.3, a server certificate chain and its key from PEM, no client authentication.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// TLS for the fake cluster's listeners: a server certificate chain and its private
/// key, both PEM (the key as PKCS#8, PKCS#1 or SEC1). They are parsed when a
/// listener starts, so invalid PEM is an error then. `Debug` shows the certificate's
/// size, never the key.
#[derive(Clone)]
pub struct FakeTls {
    cert_pem: Arc<[u8]>,
    key_pem: Arc<[u8]>,
}

impl fmt::Debug for FakeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeTls")
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

impl FakeTls {
    /// The certificate chain (leaf first) and the private key of the leaf, as PEM.
    pub fn new(cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            cert_pem: cert_pem.into().into(),
            key_pem: key_pem.into().into(),
        }
    }

    /// The certificate chain as given, for clients to trust.
    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// A rustls server configuration: `ring`, safe default protocol versions (TLS 1.2
    /// and 1.3), no client authentication. `InvalidInput` if the PEM holds no
    /// certificate or no key, cannot be parsed, or the key does not match the
    /// certificate.
    fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        let certs = parse_certs(&self.cert_pem)?;
        let key = parse_key(&self.key_pem)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS protocol versions rejected: {e}")))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid(format!("TLS certificate or key rejected: {e}")))
    }

    /// A TLS acceptor for a listener, from [`FakeTls::server_config`].
    pub(crate) fn acceptor(&self) -> io::Result<TlsAcceptor> {
        Ok(TlsAcceptor::from(Arc::new(self.server_config()?)))
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn parse_certs(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("invalid certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no certificate in the certificate PEM".into()));
    }
    Ok(certs)
}

fn parse_key(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    // The parser's error could quote the input: do not pass it on.
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|_| invalid("invalid private key PEM".into()))?
        .ok_or_else(|| invalid("no private key in the key PEM".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::ProtocolVersion;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::timeout;
    use tokio_rustls::TlsConnector;

    const TEST_TIMEOUT: Duration = Duration::from_secs(10);

    fn self_signed(name: &str) -> FakeTls {
        let generated = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        FakeTls::new(generated.cert.pem(), generated.key_pair.serialize_pem())
    }

    /// A client that trusts only `trusted`'s certificate.
    fn connector(
        trusted: &FakeTls,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for cert in parse_certs(trusted.cert_pem()).unwrap() {
            roots.add(cert).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    /// Serves one connection: reads `ping`, answers `pong`.
    async fn serve_once(
        tls: &FakeTls,
    ) -> (
        std::net::SocketAddr,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tls.acceptor().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut stream = acceptor.accept(tcp).await?;
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await?;
            assert_eq!(&buf, b"ping");
            stream.write_all(b"pong").await?;
            stream.shutdown().await?;
            Ok(())
        });
        (addr, server)
    }

    #[tokio::test]
    async fn handshake_and_exchange_over_loopback() {
        timeout(TEST_TIMEOUT, async {
            let tls = self_signed("localhost");
            for (version, expected) in [
                (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
                (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
            ] {
                let (addr, server) = serve_once(&tls).await;
                let tcp = TcpStream::connect(addr).await.unwrap();
                let name = ServerName::try_from("localhost").unwrap();
                let mut stream = connector(&tls, version).connect(name, tcp).await.unwrap();
                assert_eq!(stream.get_ref().1.protocol_version(), Some(expected));
                stream.write_all(b"ping").await.unwrap();
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer).await.unwrap();
                assert_eq!(answer, b"pong");
                server.await.unwrap().unwrap();
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn client_rejects_an_untrusted_certificate() {
        timeout(TEST_TIMEOUT, async {
            let tls = self_signed("localhost");
            let (addr, server) = serve_once(&tls).await;
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let other = self_signed("localhost");
            let err = connector(&other, &rustls::version::TLS13)
                .connect(name, tcp)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("certificate"), "{err}");
            assert!(server.await.unwrap().is_err());
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn client_rejects_a_wrong_name() {
        timeout(TEST_TIMEOUT, async {
            let tls = self_signed("broker.example");
            let (addr, server) = serve_once(&tls).await;
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let err = connector(&tls, &rustls::version::TLS13)
                .connect(name, tcp)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("certificate"), "{err}");
            assert!(server.await.unwrap().is_err());
        })
        .await
        .unwrap();
    }

    #[test]
    fn invalid_pem_is_an_error_not_a_panic() {
        let good = self_signed("localhost");
        let other = self_signed("localhost");
        let cert = good.cert_pem().to_vec();
        let key = good.key_pem.to_vec();
        let cases: [(Vec<u8>, Vec<u8>, &str); 7] = [
            (Vec::new(), key.clone(), "no certificate"),
            (b"garbage".to_vec(), key.clone(), "no certificate"),
            (key.clone(), key.clone(), "no certificate"),
            (cert.clone(), Vec::new(), "no private key"),
            (cert.clone(), cert.clone(), "no private key"),
            (
                cert.clone(),
                b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_vec(),
                "invalid private key PEM",
            ),
            (cert.clone(), other.key_pem.to_vec(), "rejected"),
        ];
        for (cert_pem, key_pem, expected) in cases {
            let err = FakeTls::new(cert_pem, key_pem).acceptor().err().unwrap();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(expected), "{err}");
        }
        assert!(good.acceptor().is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let tls = self_signed("localhost");
        let debug = format!("{tls:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
        let key = std::str::from_utf8(&tls.key_pem).unwrap();
        let body = key.lines().nth(1).unwrap();
        assert!(!debug.contains(body), "{debug}");
    }
}
