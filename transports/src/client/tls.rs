//! The client's TLS (rustls, *ring*): whom it trusts — the system's roots,
//! or a CA file it is given — and, for servers that ask, its own
//! certificate (mTLS). Used by `https://`, `wss://` and `tcp+tls://`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tls::provider;

/// What the client trusts and shows. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
}

/// Whom the client trusts.
#[derive(Clone, Copy, Debug)]
pub enum Trust<'a> {
    /// The system's root certificates.
    System,
    /// Only the CA certificates in this PEM file.
    Ca(&'a Path),
}

impl ClientTls {
    /// Trusting `trust`; showing the certificate chain and key in
    /// `identity` (PEM files) to servers that ask for one.
    ///
    /// # Errors
    /// A file that cannot be read, no root to trust, a key rustls refuses.
    pub fn new(trust: Trust<'_>, identity: Option<(&Path, &Path)>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        match trust {
            Trust::System => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
            }
            Trust::Ca(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                for cert in certs {
                    let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                }
            }
        }
        if roots.is_empty() {
            return Err("tls: no root certificate to trust".into());
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| format!("{}: {e}", cert.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("{}: {e}", cert.display()))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("{}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("tls client certificate: {e}"))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(ClientTls {
            config: Arc::new(config),
        })
    }

    /// The rustls configuration offering `alpn`.
    pub(crate) fn config(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut config = (*self.config).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// An HTTP client with this trust (HTTP/2 or HTTP/1.1 by ALPN).
    ///
    /// # Errors
    /// When reqwest cannot be built with it.
    pub fn http_client(&self) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .use_preconfigured_tls(self.config(&[b"h2", b"http/1.1"]))
            .build()
            .map_err(|e| e.to_string())
    }

    /// A connector for TLS over TCP (no ALPN).
    pub(crate) fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(Arc::new(self.config(&[])))
    }

    /// For a WebSocket (`http/1.1` by ALPN).
    pub(crate) fn websocket(&self) -> tokio_tungstenite::Connector {
        tokio_tungstenite::Connector::Rustls(Arc::new(self.config(&[b"http/1.1"])))
    }
}
