//! TLS on every network transport, with a test CA made here: TCP over TLS,
//! `wss`, HTTPS on HTTP/1.1 and HTTP/2 (ALPN); a certificate swapped while
//! a connection stays open (it goes on; new handshakes get the new one); a
//! client that trusts another CA refused; client certificates (mTLS).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arbor_mcp::{CallToolResult, McpServer, ServerBuilder, Tool};
use arbor_transports::tls::{Tls, TlsConfig};
use arbor_transports::{start, TransportConfig};
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn scratch() -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("arbor-tls-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A certificate authority made for the test.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A leaf certificate for `names`, signed by this CA: its PEM and key.
    fn issue(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap())
            .unwrap();
        roots
    }
}

use rustls::pki_types::pem::PemObject;

/// Writes the server's certificate and key into `dir`.
fn write_pair(dir: &Path, (cert, key): &(String, String)) -> TlsConfig {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let mut config = TlsConfig::new(cert_path, key_path);
    config.reload_interval = Duration::from_millis(100);
    config
}

#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client that trusts `ca` (and shows `identity`, if given), offering
/// `alpn`.
fn client(
    ca: &Ca,
    identity: Option<&(String, String)>,
    alpn: &[&[u8]],
) -> tokio_rustls::TlsConnector {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.roots());
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn server() -> McpServer {
    ServerBuilder::new("tls-test", "1")
        .tool(Tool::new("hello"), |(), _ctx| async move {
            Ok(CallToolResult::text("over tls"))
        })
        .build()
        .unwrap()
}

async fn started(
    tls: TlsConfig,
) -> (
    arbor_supervision::SupervisorRef,
    arbor_transports::Endpoints,
    Tls,
) {
    let tls = Tls::load(tls).unwrap();
    let config = TransportConfig {
        tls: Some(tls.clone()),
        ..TransportConfig::default()
    };
    let (tree, endpoints) = start(server(), config).await.unwrap();
    (tree, endpoints, tls)
}

fn call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "hello", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
}

type TlsLine = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls_to(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
) -> std::io::Result<TlsLine> {
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Sends a call as one line and reads the answer's line.
async fn line_call(stream: &mut BufReader<TlsLine>, id: u64) -> Value {
    stream
        .get_mut()
        .write_all(format!("{}\n", call(id)).as_bytes())
        .await
        .unwrap();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

/// The server certificate a fresh handshake sees.
async fn served_cert(connector: &tokio_rustls::TlsConnector, addr: SocketAddr) -> Vec<u8> {
    let stream = tls_to(connector, addr).await.unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_speaks_tls_and_a_swapped_certificate_keeps_live_connections() {
    let dir = scratch();
    let ca = Ca::new("arbor test CA");
    let (tree, endpoints, _tls) =
        started(write_pair(&dir, &ca.issue(&["localhost", "127.0.0.1"]))).await;
    let urls = endpoints.urls();
    assert!(urls.iter().any(|u| u.starts_with("https://")), "{urls:?}");
    assert!(urls.iter().any(|u| u.starts_with("wss://")), "{urls:?}");
    assert!(urls.iter().any(|u| u.starts_with("tcp+tls://")), "{urls:?}");
    let connector = client(&ca, None, &[]);

    // TCP over TLS.
    let tcp = endpoints.tcp.unwrap();
    let mut line = BufReader::new(tls_to(&connector, tcp).await.unwrap());
    let answer = line_call(&mut line, 1).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "over tls",
        "{answer}"
    );

    // wss.
    let ws = endpoints.ws.unwrap();
    let stream = tls_to(&client(&ca, None, &[b"http/1.1"]), ws)
        .await
        .unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "wss://localhost:{}/mcp",
            ws.port()
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "mcp".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            call(2).to_string(),
        ))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    assert_eq!(reply["result"]["content"][0]["text"], "over tls");

    // HTTPS: HTTP/2 when offered by ALPN, HTTP/1.1 otherwise.
    let http = endpoints.http.unwrap();
    for (alpn, version) in [
        (
            &[b"h2".as_slice(), b"http/1.1"][..],
            reqwest::Version::HTTP_2,
        ),
        (&[b"http/1.1".as_slice()][..], reqwest::Version::HTTP_11),
    ] {
        let config = {
            let mut c = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(ca.roots())
                .with_no_client_auth();
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            c
        };
        let https = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .resolve("localhost", http)
            .build()
            .unwrap();
        let response = https
            .post(format!("https://localhost:{}/mcp", http.port()))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", "hello")
            .body(call(3).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), version);
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["result"]["content"][0]["text"], "over tls", "{body}");
    }

    // The certificate swapped on disk while the TCP connection is open.
    let before = served_cert(&connector, tcp).await;
    write_pair(&dir, &ca.issue(&["localhost"]));
    let mut swapped = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if served_cert(&connector, tcp).await != before {
            swapped = true;
            break;
        }
    }
    assert!(swapped, "new handshakes did not get the new certificate");
    let answer = line_call(&mut line, 4).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "over tls",
        "the connection opened before the swap goes on"
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_another_ca_is_refused_and_mtls_needs_a_client_certificate() {
    let dir = scratch();
    let ca = Ca::new("arbor test CA");
    let clients_ca = Ca::new("arbor clients CA");
    let mut config = write_pair(&dir, &ca.issue(&["localhost"]));
    let ca_path = dir.join("clients.pem");
    std::fs::write(&ca_path, &clients_ca.pem).unwrap();
    config.client_ca = Some(ca_path);
    let (tree, endpoints, tls) = started(config).await;
    let tcp = endpoints.tcp.unwrap();
    // The server's certificate is not one this client trusts.
    let stranger = Ca::new("someone else");
    let refused = tls_to(&client(&stranger, None, &[]), tcp).await;
    assert!(
        refused.is_err(),
        "a wrong server certificate must fail the handshake"
    );
    // No client certificate: refused (TLS 1.3 says so at the first read).
    let refused = async {
        let mut stream = tls_to(&client(&ca, None, &[]), tcp).await?;
        stream
            .write_all(format!("{}\n", call(1)).as_bytes())
            .await?;
        let mut buf = [0u8; 64];
        match stream.read(&mut buf).await? {
            0 => Err(std::io::Error::other("closed")),
            _ => Ok(()),
        }
    }
    .await;
    assert!(
        refused.is_err(),
        "a client without a certificate must be refused"
    );
    // A certificate from another CA: refused too.
    let forged = stranger.issue(&["client"]);
    let refused = async {
        let mut stream = tls_to(&client(&ca, Some(&forged), &[]), tcp).await?;
        stream
            .write_all(format!("{}\n", call(1)).as_bytes())
            .await?;
        let mut buf = [0u8; 64];
        match stream.read(&mut buf).await? {
            0 => Err(std::io::Error::other("closed")),
            _ => Ok(()),
        }
    }
    .await;
    assert!(
        refused.is_err(),
        "a client certificate of another CA must be refused"
    );
    // The clients' CA signed this one: served.
    let identity = clients_ca.issue(&["client"]);
    let mut line = BufReader::new(
        tls_to(&client(&ca, Some(&identity), &[]), tcp)
            .await
            .unwrap(),
    );
    let answer = line_call(&mut line, 2).await;
    assert_eq!(answer["result"]["content"][0]["text"], "over tls");
    // A reload that cannot read its files keeps the served certificate.
    std::fs::write(dir.join("key.pem"), "not a key").unwrap();
    assert!(tls.reload().is_err());
    let mut again = BufReader::new(
        tls_to(&client(&ca, Some(&identity), &[]), tcp)
            .await
            .unwrap(),
    );
    assert_eq!(
        line_call(&mut again, 3).await["result"]["content"][0]["text"],
        "over tls"
    );
    tree.shutdown().await;
}
