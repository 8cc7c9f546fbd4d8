//! TLS for every network listener (rustls, the *ring* provider): HTTP
//! (HTTP/1.1 and HTTP/2 by ALPN), WebSocket (`wss`) and TCP. The
//! certificate and key come from PEM files and are read again when either
//! file changes, or on [`Tls::reload`] (`arbor serve` calls it on SIGHUP):
//! new handshakes get the new certificate, live connections keep theirs.
//! With a client CA, clients must present a certificate it signed (mTLS).
//!
//! The handshake runs after the accept, off the accept loop, within
//! [`TlsConfig::handshake_timeout`], holding the connection's place in the
//! connection limit; a connection turned away by a limit is closed without
//! a handshake.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Where the certificate and key are, and what clients must show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM (the server's first).
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Clients must present a certificate signed by one of these (PEM):
    /// mutual TLS. Read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// How often the certificate and key files are checked for changes.
    #[serde(default = "default_reload_interval", with = "humantime_serde")]
    pub reload_interval: Duration,
    /// How long a client has to finish its handshake.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(2)
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

impl TlsConfig {
    /// TLS with the certificate chain at `cert` and its key at `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsConfig {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            reload_interval: default_reload_interval(),
            handshake_timeout: default_handshake_timeout(),
        }
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or is not what it should be.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA cannot verify clients.
    #[error("tls client_ca: {0}")]
    ClientCa(String),
}

/// TLS, loaded: the acceptors of every listener, sharing one certificate
/// that reloads. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    config: TlsConfig,
    current: Arc<Current>,
    /// HTTP: `h2`, then `http/1.1`.
    http: tokio_rustls::TlsAcceptor,
    /// WebSocket: an HTTP/1.1 upgrade.
    websocket: tokio_rustls::TlsAcceptor,
    /// TCP: no protocol offered, so no HTTP client mistakes it for one.
    lines: tokio_rustls::TlsAcceptor,
    watching: std::sync::OnceLock<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("config", &self.config).finish()
    }
}

/// The certificate served now.
#[derive(Debug)]
struct Current {
    key: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last read.
    stamp: RwLock<Option<(SystemTime, SystemTime)>>,
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key.read().clone())
    }
}

/// *ring*: it builds with a C compiler alone, where aws-lc needs more of
/// a toolchain. rustls marks it deprecated for lacking post-quantum key
/// exchange, which arbor does not offer yet.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Reads the certificate chain and key of `config`.
fn load_key(config: &TlsConfig) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert)
        .map_err(|e| file_error(&config.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&config.cert, e))?;
    if chain.is_empty() {
        return Err(file_error(&config.cert, "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|e| file_error(&config.key, e))?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| file_error(&config.key, e))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| file_error(&config.key, format!("does not match the certificate: {e}")))?;
    Ok(certified)
}

fn stamp(config: &TlsConfig) -> Option<(SystemTime, SystemTime)> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((modified(&config.cert)?, modified(&config.key)?))
}

impl Tls {
    /// Loads the certificate, key and client CA of `config`.
    ///
    /// # Errors
    /// A file that cannot be read or parsed, a key that does not match
    /// its certificate, a client CA that verifies nothing.
    pub fn load(config: TlsConfig) -> Result<Tls, TlsError> {
        let current = Arc::new(Current {
            key: RwLock::new(Arc::new(load_key(&config)?)),
            stamp: RwLock::new(stamp(&config)),
        });
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = match &config.client_ca {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| file_error(path, e))? {
                    roots
                        .add(cert.map_err(|e| file_error(path, e))?)
                        .map_err(|e| file_error(path, e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| TlsError::ClientCa(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let base = builder.with_cert_resolver(current.clone());
        let mut http = base.clone();
        http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut websocket = base.clone();
        websocket.alpn_protocols = vec![b"http/1.1".to_vec()];
        let lines = base;
        Ok(Tls {
            inner: Arc::new(Inner {
                config,
                current,
                http: tokio_rustls::TlsAcceptor::from(Arc::new(http)),
                websocket: tokio_rustls::TlsAcceptor::from(Arc::new(websocket)),
                lines: tokio_rustls::TlsAcceptor::from(Arc::new(lines)),
                watching: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Reads the certificate and key again: new handshakes get them, live
    /// connections keep what they have. A pair that cannot be read keeps
    /// the one served.
    ///
    /// # Errors
    /// Why the files were not taken.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = &self.inner.config;
        let key = load_key(config)?;
        *self.inner.current.key.write() = Arc::new(key);
        *self.inner.current.stamp.write() = stamp(config);
        metrics::counter!("arbor_tls_reloads_total").increment(1);
        tracing::info!(target: "arbor::transports", cert = %config.cert.display(), "tls certificate reloaded");
        Ok(())
    }

    /// Starts checking the files for changes every `reload_interval`
    /// (once, however often called; needs a Tokio runtime).
    pub(crate) fn watch(&self) {
        if self.inner.watching.set(()).is_err() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let every = self.inner.config.reload_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                let now = stamp(&inner.config);
                if now.is_some() && now != *inner.current.stamp.read() {
                    let tls = Tls { inner };
                    if let Err(e) = tls.reload() {
                        // Half-written files: tried again at the next change.
                        tracing::warn!(target: "arbor::transports", "tls reload failed, the served certificate kept: {e}");
                        *tls.inner.current.stamp.write() = now;
                    }
                }
            }
        });
    }

    /// Runs the server's handshake on `stream`, within the timeout.
    pub(crate) async fn accept(&self, stream: TcpStream, alpn: Alpn) -> std::io::Result<Accepted> {
        let acceptor = match alpn {
            Alpn::Http => &self.inner.http,
            Alpn::WebSocket => &self.inner.websocket,
            Alpn::None => &self.inner.lines,
        };
        match tokio::time::timeout(self.inner.config.handshake_timeout, acceptor.accept(stream))
            .await
        {
            Ok(Ok(tls)) => Ok(Accepted::Tls(Box::new(tls))),
            Ok(Err(e)) => {
                metrics::counter!("arbor_tls_handshakes_failed_total").increment(1);
                Err(e)
            }
            Err(_) => {
                metrics::counter!("arbor_tls_handshakes_failed_total").increment(1);
                Err(std::io::ErrorKind::TimedOut.into())
            }
        }
    }
}

/// Which protocols a listener offers by ALPN.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Alpn {
    /// HTTP/2 and HTTP/1.1.
    Http,
    /// HTTP/1.1, for the upgrade.
    WebSocket,
    /// None (TCP).
    None,
}

/// An accepted connection: plain TCP, or TLS over it.
#[derive(Debug)]
pub enum Accepted {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, handshaken.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Accepted {
    /// The client's address.
    pub fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp().peer_addr()
    }

    /// The TCP socket under it.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Accepted::Plain(tcp) => tcp,
            Accepted::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Whether the client chose HTTP/2 by ALPN.
    pub(crate) fn is_h2(&self) -> bool {
        match self {
            Accepted::Plain(_) => false,
            Accepted::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

impl AsyncRead for Accepted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Accepted::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Accepted::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Accepted::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Accepted::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Accepted::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Accepted::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Accepted::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Accepted::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Accepted::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Accepted::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Accepted::Plain(tcp) => tcp.is_write_vectored(),
            Accepted::Tls(tls) => tls.is_write_vectored(),
        }
    }
}
