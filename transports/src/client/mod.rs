//! Client transports: what [`arbor_mcp::client::Client`] dials.
//!
//! - Streamable HTTP, both eras: [`HttpConnector`].
//! - The legacy HTTP+SSE transport (2024-11-05): [`LegacySseConnector`].
//! - WebSocket: [`WsConnector`].
//! - Newline-delimited JSON over TCP: [`tcp`].
//! - A server spawned as a child process: [`StdioConnector`].
//!
//! [`connector_for`] picks one from a target as a person types it.

mod bounded;
mod http;
mod legacy;
pub mod oauth;
mod stdio;
mod supervised;
mod ws;

use arbor_mcp::client::{Connector, LineConnector};

pub use http::HttpConnector;
pub use legacy::LegacySseConnector;
pub use oauth::{OAuth, OAuthConfig};
pub use stdio::{StderrLog, StdioConnector};
pub use supervised::{supervised_client, ClientSlot};
pub use ws::WsConnector;

/// Newline-delimited JSON over TCP to `addr` (`host:port`), redialled on
/// every reconnection.
pub fn tcp(addr: impl Into<String>) -> impl Connector {
    tcp_from(addr, None)
}

/// [`tcp`], each connection authenticated first with `token`
/// ([`arbor_mcp::auth::AUTHENTICATE`]): a refused token fails the dial.
pub fn tcp_with_token(addr: impl Into<String>, token: impl Into<String>) -> impl Connector {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (addr, token) = (addr.into(), token.into());
    LineConnector::new(move || {
        let (addr, token) = (addr.clone(), token.clone());
        async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (read, mut write) = stream.into_split();
            let request = serde_json::json!({"jsonrpc": "2.0", "id": arbor_mcp::auth::AUTHENTICATE,
                "method": arbor_mcp::auth::AUTHENTICATE, "params": {"token": token}});
            write.write_all(format!("{request}\n").as_bytes()).await?;
            let mut read = tokio::io::BufReader::new(read);
            let mut answer = String::new();
            read.read_line(&mut answer).await?;
            let answer: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
            if let Some(error) = answer.get("error") {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("token refused: {error}"),
                ));
            }
            Ok((Box::new(read) as _, Box::new(write) as _))
        }
    })
}

/// [`tcp`] dialled from the local address `local` when given (a load
/// generator spreads its connections over several loopback addresses,
/// each with its own ephemeral ports).
pub fn tcp_from(addr: impl Into<String>, local: Option<std::net::IpAddr>) -> impl Connector {
    let addr = addr.into();
    LineConnector::new(move || {
        let addr = addr.clone();
        async move {
            let stream = match local {
                None => tokio::net::TcpStream::connect(addr).await?,
                Some(local) => dial_from(local, &addr).await?,
            };
            stream.set_nodelay(true)?;
            let (read, write) = stream.into_split();
            Ok((Box::new(read) as _, Box::new(write) as _))
        }
    })
}

/// A TCP connection to `addr` bound to `local` first.
async fn dial_from(local: std::net::IpAddr, addr: &str) -> std::io::Result<tokio::net::TcpStream> {
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for to in tokio::net::lookup_host(addr).await? {
        if to.is_ipv4() != local.is_ipv4() {
            continue;
        }
        let socket = if to.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        defer_port_choice(&socket)?;
        socket.bind(std::net::SocketAddr::new(local, 0))?;
        match socket.connect(to).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Leaves the choice of the ephemeral port to `connect` (Linux's
/// `IP_BIND_ADDRESS_NO_PORT`). A `bind` to port 0 must pick a port unique
/// among every socket bound to it, a scan that grows with the sockets
/// already open and in TIME_WAIT (past ~10K held it was most of a load
/// generator's CPU); `connect` needs only the 4-tuple to be unique.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn defer_port_choice(socket: &tokio::net::TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is the open socket `socket` owns for the whole
    // call; the option value points at a live `c_int` and its length is
    // that of a `c_int`, which is what the kernel reads for this option.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere the port is chosen at `bind`, as before.
#[cfg(not(target_os = "linux"))]
fn defer_port_choice(_socket: &tokio::net::TcpSocket) -> std::io::Result<()> {
    Ok(())
}

/// A connector for `target`: `http://…/sse` (legacy HTTP+SSE), any other
/// `http://…` or `https://…` (Streamable HTTP),
/// `ws://…` (WebSocket), `tcp://host:port`; anything else is refused.
/// A command to spawn is given as [`StdioConnector::new`].
///
/// # Errors
/// The target's scheme is not one arbor speaks.
pub fn connector_for(target: &str) -> Result<Box<dyn Connector>, String> {
    connector_with_token(target, None)
}

/// [`connector_for`], presenting the bearer `token` when given: in the
/// `Authorization` header on HTTP and the WebSocket upgrade,
/// [`arbor_mcp::auth::AUTHENTICATE`] first on TCP.
///
/// # Errors
/// The target's scheme is not one arbor speaks, or the token cannot be
/// sent.
pub fn connector_with_token(
    target: &str,
    token: Option<&str>,
) -> Result<Box<dyn Connector>, String> {
    if (target.starts_with("http://") || target.starts_with("https://")) && target.ends_with("/sse")
    {
        let legacy = LegacySseConnector::new(target);
        Ok(Box::new(match token {
            Some(token) => legacy.bearer(token)?,
            None => legacy,
        }))
    } else if target.starts_with("http://") || target.starts_with("https://") {
        let http = HttpConnector::new(target);
        Ok(Box::new(match token {
            Some(token) => http
                .header("Authorization", &format!("Bearer {token}"))
                .map_err(|e| e.to_string())?,
            None => http,
        }))
    } else if target.starts_with("ws://") || target.starts_with("wss://") {
        let ws = WsConnector::new(target);
        Ok(Box::new(match token {
            Some(token) => ws.bearer(token),
            None => ws,
        }))
    } else if let Some(addr) = target.strip_prefix("tcp://") {
        Ok(match token {
            Some(token) => Box::new(tcp_with_token(addr, token)),
            None => Box::new(tcp(addr)),
        })
    } else {
        Err(format!(
            "{target:?}: expected http://, ws:// or tcp:// (or `-- COMMAND…` for stdio)"
        ))
    }
}
