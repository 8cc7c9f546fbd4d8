//! `arbor serve`'s configuration, every listener, limit, timeout and
//! policy in one file: the defaults, then the file (`--config FILE`), then
//! `ARBOR_…` environment variables, then flags, each over the one before.
//! Unknown keys and bad values are refused at start, naming the key.
//!
//! An environment variable names its key by its path, levels joined by a
//! double underscore: `ARBOR_SHARDS=8`, `ARBOR_HTTP__MAX_SESSIONS=5000`,
//! `ARBOR_SERVER__LIMITS__MAX_DEPTH=32`. Its value is read as TOML (`8`,
//! `true`, `["a", "b"]`), or as a string when it is not (`30s`,
//! `127.0.0.1:8930`).

use std::net::SocketAddr;
use std::path::Path;

use arbor::admin::AdminConfig;
use arbor::mcp::ServerConfig;
use arbor::transports::http::HttpConfig;
use arbor::transports::{OriginPolicy, TcpConfig, TransportConfig, WsConfig};
use serde::{Deserialize, Serialize};

/// The fixed default ports, so that a client configured once keeps working
/// after a restart (`0` in the file or a flag still picks a free one).
pub(crate) const HTTP_PORT: u16 = 8930;
/// WebSocket's default port.
pub(crate) const WS_PORT: u16 = 8931;
/// TCP's default port.
pub(crate) const TCP_PORT: u16 = 8932;
/// The admin listener's default port.
pub(crate) const ADMIN_PORT: u16 = 8939;

/// Environment variables that are the command line's own, not keys.
const NOT_KEYS: [&str; 5] = [
    "ARBOR_NODE_WATCHES_PARENT",
    "ARBOR_LOG_FORMAT",
    "ARBOR_OTLP_ENDPOINT",
    "ARBOR_ADMIN_URL",
    "ARBOR_ADMIN_TOKEN",
];

/// A transport `arbor serve` can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Transport {
    /// Streamable HTTP and legacy HTTP+SSE.
    Http,
    /// WebSocket.
    Ws,
    /// Newline-delimited JSON-RPC over TCP.
    Tcp,
}

/// Everything `arbor serve` is configured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServeConfig {
    /// Which transports to serve.
    pub(crate) serve: Vec<Transport>,
    /// Connection supervisor shards per transport.
    pub(crate) shards: usize,
    /// Connections each listener's kernel queue holds before they are
    /// accepted (Linux caps it at `net.core.somaxconn`).
    pub(crate) listen_backlog: u32,
    /// The most connections at once, all transports together; unset: fit to
    /// the file descriptor limit, at most 100 000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_connections: Option<usize>,
    /// `Host` and `Origin` accepted by every HTTP and WebSocket listener,
    /// the admin listener's included.
    pub(crate) origins: OriginPolicy,
    /// Streamable HTTP and legacy SSE.
    pub(crate) http: HttpConfig,
    /// WebSocket.
    pub(crate) ws: WsConfig,
    /// TCP.
    pub(crate) tcp: TcpConfig,
    /// The MCP server: message limits, timeouts, queues, tasks, caching.
    pub(crate) server: ServerConfig,
    /// The admin listener.
    pub(crate) admin: AdminConfig,
    /// TLS on the HTTP, WebSocket and TCP listeners; unset: plain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tls: Option<arbor::transports::tls::TlsConfig>,
    /// Bind the listeners with SO_REUSEPORT, sharing their ports with other
    /// processes (what the nodes of `arbor serve --nodes` do).
    pub(crate) reuse_port: bool,
    /// This node's cluster (NATS JetStream); unset: a node alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cluster: Option<arbor::cluster::ClusterConfig>,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            serve: vec![Transport::Http, Transport::Ws, Transport::Tcp],
            shards: TransportConfig::default().shards,
            listen_backlog: TransportConfig::default().listen_backlog,
            max_connections: None,
            origins: OriginPolicy::default(),
            http: HttpConfig {
                addr: loopback(HTTP_PORT),
                ..HttpConfig::default()
            },
            ws: WsConfig {
                addr: loopback(WS_PORT),
                ..WsConfig::default()
            },
            tcp: TcpConfig {
                addr: loopback(TCP_PORT),
                ..TcpConfig::default()
            },
            server: ServerConfig::default(),
            admin: AdminConfig {
                addr: loopback(ADMIN_PORT),
                ..AdminConfig::default()
            },
            tls: None,
            reuse_port: false,
            cluster: None,
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    Read(String),
    /// The file is not TOML.
    Syntax(String),
    /// A key is unknown or its value is bad.
    Key(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read(why) | ConfigError::Syntax(why) | ConfigError::Key(why) => {
                f.write_str(why)
            }
        }
    }
}

/// A value from the environment: TOML when it reads as TOML, else a string.
fn env_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

/// Sets `value` at `path` in `table`, making the tables on the way.
fn set(
    table: &mut toml::Table,
    path: &[String],
    value: toml::Value,
    var: &str,
) -> Result<(), ConfigError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(ConfigError::Key(format!("{var}: names no key")));
    };
    let mut here = table;
    for key in parents {
        let next = here
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = match next {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Key(format!(
                    "{var}: {key} is a value, not a section"
                )))
            }
        };
    }
    here.insert(last.clone(), value);
    Ok(())
}

impl ServeConfig {
    /// The defaults, then `file` if given, then the `ARBOR_…` variables of
    /// `env`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the key or the variable.
    pub(crate) fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServeConfig, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(format!("{}: {e}", path.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Syntax(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ARBOR_") && !NOT_KEYS.contains(&k.as_str()))
            .collect();
        vars.sort();
        for (var, raw) in &vars {
            let path: Vec<String> = var["ARBOR_".len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            set(&mut table, &path, env_value(raw), var)?;
        }
        let source = match file {
            Some(path) => path.display().to_string(),
            None => "the environment".to_string(),
        };
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Key(format!("{source}: key {key}: {}", e.inner()))
        })
    }

    /// What the transports are started with.
    pub(crate) fn transports(&self) -> TransportConfig {
        let serves = |t: Transport| self.serve.contains(&t);
        TransportConfig {
            tcp: serves(Transport::Tcp).then(|| self.tcp.clone()),
            ws: serves(Transport::Ws).then(|| self.ws.clone()),
            http: serves(Transport::Http).then(|| self.http.clone()),
            origins: self.origins.clone(),
            max_connections: self.max_connections,
            shards: self.shards,
            listen_backlog: self.listen_backlog,
            // Loaded by `arbor serve`, which reloads it on SIGHUP.
            tls: None,
            // Set by `arbor serve` once the node has joined its cluster.
            forward: None,
            reuse_port: self.reuse_port,
        }
    }

    /// The documented default file (`arbor config --print-default`).
    pub(crate) fn default_file() -> String {
        let body = toml::to_string_pretty(&ServeConfig::default())
            .unwrap_or_else(|e| format!("# could not write the defaults: {e}\n"));
        let mut out = String::from(HEADER);
        for line in body.lines() {
            out.push_str(line);
            out.push('\n');
            // Keys whose default is "unset" have no value to print.
            match line {
                "shards = 4" => out.push_str(
                    "# max_connections = 100000   # unset: fit to the file descriptor limit\n",
                ),
                "[server]" => out.push_str(
                    "# max_buffered_bytes = 1073741824   # unset: half the machine's memory\n",
                ),
                "[server.resource_guard]" => out.push_str(
                    "# max_fds = 20000   # unset: the process's descriptor limit\n\
                     # max_memory_bytes = 8589934592   # unset: the cgroup's or the machine's memory\n",
                ),
                "[admin]" => out.push_str(
                    "# token = \"at least 16 characters\"   # unset: a fresh one, printed at start\n",
                ),
                _ => {}
            }
        }
        out
    }
}

const HEADER: &str = "\
# arbor serve's configuration, with every default (arbor config --print-default).
# Each key is documented with its type in the API docs: [http] HttpConfig,
# [ws] WsConfig, [tcp] TcpConfig, [server] ServerConfig, [admin] AdminConfig,
# [origins] OriginPolicy. Durations are written as 30s, 500ms, 10m.
#
# Later sources win: these defaults, this file (arbor serve --config FILE),
# ARBOR_… environment variables (levels joined by a double underscore:
# ARBOR_HTTP__MAX_SESSIONS=5000), then flags (--http ADDR, ...).
# Unknown keys and bad values are refused at start, naming the key.
# A port of 0 picks a free one.

";

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_printed_default_file_reads_back_as_the_defaults() {
        let dir = std::env::temp_dir().join(format!("arbor-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("default.toml");
        std::fs::write(&path, ServeConfig::default_file()).unwrap_or_else(|e| panic!("{e}"));
        let read = ServeConfig::load(Some(&path), env(&[]));
        assert_eq!(read.ok(), Some(ServeConfig::default()));
        let text = ServeConfig::default_file();
        for key in [
            "request_timeout = \"1m\"",
            "[server.limits]",
            "max_depth = 64",
            "addr = \"127.0.0.1:8930\"",
        ] {
            assert!(text.contains(key), "{key} missing from\n{text}");
        }
    }

    #[test]
    fn the_environment_sets_keys_by_path_and_unknown_ones_are_refused() {
        let read = ServeConfig::load(
            None,
            env(&[
                ("ARBOR_SHARDS", "8"),
                ("ARBOR_HTTP__MAX_SESSIONS", "5000"),
                ("ARBOR_SERVER__REQUEST_TIMEOUT", "30s"),
                ("ARBOR_SERVER__LIMITS__MAX_DEPTH", "32"),
                ("ARBOR_TCP__ADDR", "127.0.0.1:0"),
                ("ARBOR_SERVE", "[\"tcp\"]"),
                ("ARBOR_LOG_FORMAT", "json"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.shards, 8);
        assert_eq!(read.http.max_sessions, 5000);
        assert_eq!(
            read.server.request_timeout,
            std::time::Duration::from_secs(30)
        );
        assert_eq!(read.server.limits.max_depth, 32);
        assert_eq!(read.tcp.addr.port(), 0);
        let transports = read.transports();
        assert!(transports.tcp.is_some() && transports.http.is_none() && transports.ws.is_none());
        let refused = |pairs: &[(&str, &str)]| {
            ServeConfig::load(None, env(pairs))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let unknown = refused(&[("ARBOR_HTTP__MAX_SESIONS", "1")]);
        assert!(
            unknown.contains("key http") && unknown.contains("max_sesions"),
            "{unknown}"
        );
        let bad = refused(&[("ARBOR_SERVER__REQUEST_TIMEOUT", "soon")]);
        assert!(bad.contains("server.request_timeout"), "{bad}");
        let bad = refused(&[("ARBOR_SHARDS", "many")]);
        assert!(bad.contains("key shards"), "{bad}");
    }

    #[test]
    fn a_file_with_an_unknown_key_or_bad_value_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("arbor-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            path
        };
        let unknown = write("unknown.toml", "[ws]\nping_intervall = \"5s\"\n");
        let e = ServeConfig::load(Some(&unknown), env(&[]))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref().is_some_and(|e| e.contains("ping_intervall")),
            "{e:?}"
        );
        let bad = write("bad.toml", "[admin]\ntoken = \"short\"\n");
        let e = ServeConfig::load(Some(&bad), env(&[]))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("admin.token") && e.contains("16")),
            "{e:?}"
        );
        // The file, then the environment over it.
        let set = write("set.toml", "shards = 2\n[http]\nmax_sessions = 7\n");
        let read = ServeConfig::load(Some(&set), env(&[("ARBOR_SHARDS", "3")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((read.shards, read.http.max_sessions), (3, 7));
    }
}
