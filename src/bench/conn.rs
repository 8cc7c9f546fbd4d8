//! Connections of each kind, dialled with arbor's client from one of
//! several loopback source addresses.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use arbor::mcp::client::{Client, VersionChoice};
use arbor::mcp::version::ProtocolVersion;
use arbor::transports::client::{tcp_from, HttpConnector, WsConnector};

use super::target::Endpoints;

/// How long one request of the load generator may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A kind of connection: its transport and era.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// Newline-delimited JSON over TCP, handshake era.
    Tcp,
    /// WebSocket, handshake era.
    Ws,
    /// Streamable HTTP, handshake era: a session with its GET stream.
    Http,
    /// Streamable HTTP, 2026-07-28: stateless requests; held, a
    /// `subscriptions/listen` stream.
    Modern,
}

impl Kind {
    /// How the report names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Tcp => "TCP",
            Kind::Ws => "WebSocket",
            Kind::Http => "HTTP handshake era",
            Kind::Modern => "HTTP 2026-07-28",
        }
    }

    /// What one held connection of this kind is.
    pub(crate) fn held_label(self) -> &'static str {
        match self {
            Kind::Tcp => "TCP connection",
            Kind::Ws => "WebSocket connection",
            Kind::Http => "HTTP session + GET stream",
            Kind::Modern => "HTTP 2026 listen stream",
        }
    }

    /// The version spoken.
    fn version(self) -> ProtocolVersion {
        match self {
            Kind::Tcp | Kind::Ws | Kind::Http => ProtocolVersion::LATEST_HANDSHAKE,
            Kind::Modern => ProtocolVersion::V2026_07_28,
        }
    }
}

/// Idle connections the held sessions' HTTP client keeps per source for
/// their POSTs. Each GET stream takes a connection for good; without a
/// pool every POST would open one more, and the TIME_WAIT sockets they
/// leave slow every later dial (19K sessions took 19 s instead of 3).
const POOLED: usize = 16;
/// How long a pooled POST connection stays idle: less than the settling
/// before the server's memory is read, so a held session counts only its
/// GET stream, as the issue counts it.
const POOL_IDLE: Duration = Duration::from_millis(500);

/// Dials connections of every kind, spread over source addresses.
#[derive(Debug)]
pub(crate) struct Dialer {
    endpoints: Endpoints,
    sources: Vec<IpAddr>,
    /// Per source: the held sessions' HTTP client, whose idle connections
    /// close soon after the sessions open (see [`POOL_IDLE`]).
    held_http: Vec<reqwest::Client>,
}

impl Dialer {
    /// Dials `endpoints` from 127.0.0.1 … 127.0.0.`sources`.
    pub(crate) fn new(endpoints: Endpoints, sources: u8) -> anyhow::Result<Dialer> {
        let sources: Vec<IpAddr> = (1..=sources.max(1))
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect();
        let held_http = sources
            .iter()
            .map(|&ip| {
                http_from(ip)
                    .pool_max_idle_per_host(POOLED)
                    .pool_idle_timeout(POOL_IDLE)
                    .build()
            })
            .collect::<Result<_, _>>()?;
        Ok(Dialer {
            endpoints,
            sources,
            held_http,
        })
    }

    /// Connection `i` of `kind`. `held` connections keep no idle HTTP
    /// connection beside their stream; driven ones keep one keep-alive
    /// connection of their own, as a client of an SDK does.
    pub(crate) async fn connect(&self, kind: Kind, i: usize, held: bool) -> Result<Client, String> {
        let which = i % self.sources.len();
        let source = self.sources[which];
        let builder = Client::builder()
            .name("arbor-bench", env!("CARGO_PKG_VERSION"))
            .version(VersionChoice::Pinned(kind.version()))
            .request_timeout(REQUEST_TIMEOUT);
        let missing = || format!("the server offers no {}", kind.label());
        let client = match kind {
            Kind::Tcp => {
                let addr = self.endpoints.tcp.ok_or_else(missing)?;
                builder
                    .connect(tcp_from(addr.to_string(), Some(source)))
                    .await
            }
            Kind::Ws => {
                let addr = self.endpoints.ws.ok_or_else(missing)?;
                let connector = WsConnector::new(format!("ws://{addr}/mcp")).local_address(source);
                builder.connect(connector).await
            }
            Kind::Http | Kind::Modern => {
                let addr = self.endpoints.http.ok_or_else(missing)?;
                let http = if held {
                    self.held_http[which].clone()
                } else {
                    http_from(source).build().map_err(|e| e.to_string())?
                };
                let connector = HttpConnector::new(format!("http://{addr}/mcp")).http_client(http);
                builder.connect(connector).await
            }
        };
        client.map_err(|e| e.to_string())
    }
}

/// An HTTP client dialling from `source`. 127.0.0.1 is where the kernel
/// dials loopback from anyway, so it is not bound: reqwest binds before
/// connecting, choosing the port at `bind`, whose cost grows with every
/// socket open or in TIME_WAIT (TCP and WebSocket defer it to `connect`).
fn http_from(source: IpAddr) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    if source == IpAddr::V4(Ipv4Addr::LOCALHOST) {
        builder
    } else {
        builder.local_address(source)
    }
}
