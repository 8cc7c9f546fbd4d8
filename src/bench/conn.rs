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

/// Dials connections of every kind, spread over source addresses.
#[derive(Debug)]
pub(crate) struct Dialer {
    endpoints: Endpoints,
    sources: Vec<IpAddr>,
    /// Per source: HTTP clients that keep no idle connection, so a held
    /// session is only its GET (or listen) stream, as the issue counts it.
    streams_only: Vec<reqwest::Client>,
}

impl Dialer {
    /// Dials `endpoints` from 127.0.0.1 … 127.0.0.`sources`.
    pub(crate) fn new(endpoints: Endpoints, sources: u8) -> anyhow::Result<Dialer> {
        let sources: Vec<IpAddr> = (1..=sources.max(1))
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect();
        let streams_only = sources
            .iter()
            .map(|&ip| {
                reqwest::Client::builder()
                    .local_address(ip)
                    .pool_max_idle_per_host(0)
                    .build()
            })
            .collect::<Result<_, _>>()?;
        Ok(Dialer {
            endpoints,
            sources,
            streams_only,
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
                    self.streams_only[which].clone()
                } else {
                    reqwest::Client::builder()
                        .local_address(source)
                        .build()
                        .map_err(|e| e.to_string())?
                };
                let connector = HttpConnector::new(format!("http://{addr}/mcp")).http_client(http);
                builder.connect(connector).await
            }
        };
        client.map_err(|e| e.to_string())
    }
}
