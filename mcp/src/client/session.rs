//! What a client shares between its handle and its process: the agreed
//! session, the id source, notifications, cached lists and tools' headers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::jsonrpc::{Id, Notification};
use crate::model::{
    DiscoverResult, Implementation, InitializeResult, JsonObject, LogLevel, TaskSupport,
};
use crate::param_header::ParamHeader;
use crate::version::ProtocolVersion;

/// How many notifications a slow subscriber may fall behind before it
/// misses some (it is told how many, as `RecvError::Lagged`).
const NOTIFICATION_BACKLOG: usize = 1024;

/// What the client and server agreed on.
#[derive(Clone, Debug, PartialEq)]
pub struct Negotiated {
    /// The protocol version spoken.
    pub version: ProtocolVersion,
    /// Who the server is, if it said.
    pub server_info: Option<Implementation>,
    /// What the server offers.
    pub capabilities: JsonObject,
    /// The server's instructions for the model.
    pub instructions: Option<String>,
}

impl Negotiated {
    pub(crate) fn modern(found: DiscoverResult) -> Self {
        let server_info = found
            .meta
            .as_ref()
            .and_then(|m| m.get("io.modelcontextprotocol/serverInfo"))
            .and_then(|info| serde_json::from_value(info.clone()).ok());
        Negotiated {
            version: ProtocolVersion::V2026_07_28,
            server_info,
            capabilities: found.capabilities,
            instructions: found.instructions,
        }
    }

    pub(crate) fn handshake(version: ProtocolVersion, init: InitializeResult) -> Self {
        Negotiated {
            version,
            server_info: Some(init.server_info),
            capabilities: init.capabilities,
            instructions: init.instructions,
        }
    }

    /// Whether the server declares `capability` (a top-level key).
    pub fn offers(&self, capability: &str) -> bool {
        self.capabilities.contains_key(capability)
    }
}

/// Request ids: a counter that only goes up, so that no id is ever reused
/// by one client, across reconnections included.
#[derive(Debug)]
pub(crate) struct IdSource(AtomicI64);

impl Default for IdSource {
    fn default() -> Self {
        IdSource(AtomicI64::new(1))
    }
}

impl IdSource {
    pub(crate) fn next(&self) -> Id {
        Id::Number(self.0.fetch_add(1, Ordering::Relaxed))
    }
}

/// A cached 2026-07-28 result, fresh until `until`.
struct Cached {
    until: Instant,
    result: Value,
}

/// What a listing said of a tool that the client acts on.
struct ListedTool {
    /// Its `Mcp-Param-*` headers.
    headers: Vec<ParamHeader>,
    /// Whether it runs as a task.
    tasks: TaskSupport,
}

/// The state a client's handle and process share.
pub(crate) struct Shared {
    pub(crate) ids: IdSource,
    session: RwLock<Option<Arc<Negotiated>>>,
    notifications: broadcast::Sender<Notification>,
    /// What the last listing said of each tool, by name.
    tools: RwLock<HashMap<String, ListedTool>>,
    /// Cacheable results by method and key (cursor or URI).
    cache: Mutex<HashMap<(String, String), Cached>>,
    /// The log level asked of the server (2026-07-28: on every request).
    log_level: RwLock<Option<LogLevel>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("session", &*self.session.read())
            .finish_non_exhaustive()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            ids: IdSource::default(),
            session: RwLock::new(None),
            notifications: broadcast::channel(NOTIFICATION_BACKLOG).0,
            tools: RwLock::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            log_level: RwLock::new(None),
        }
    }
}

impl Shared {
    pub(crate) fn session(&self) -> Option<Arc<Negotiated>> {
        self.session.read().clone()
    }

    pub(crate) fn set_session(&self, session: Option<Arc<Negotiated>>) {
        // A new connection may be another server: nothing cached holds.
        self.cache.lock().clear();
        *self.session.write() = session;
    }

    pub(crate) fn log_level(&self) -> Option<LogLevel> {
        *self.log_level.read()
    }

    pub(crate) fn set_log_level(&self, level: Option<LogLevel>) {
        *self.log_level.write() = level;
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.notifications.subscribe()
    }

    /// A notification arrived: drop what it makes stale, then pass it on.
    pub(crate) fn notified(&self, notification: Notification) {
        let stale: Option<&[&str]> = match notification.method.as_str() {
            "notifications/tools/list_changed" => Some(&["tools/list"]),
            "notifications/prompts/list_changed" => Some(&["prompts/list"]),
            "notifications/resources/list_changed" => {
                Some(&["resources/list", "resources/templates/list"])
            }
            "notifications/resources/updated" => Some(&["resources/read"]),
            _ => None,
        };
        if let Some(methods) = stale {
            self.cache
                .lock()
                .retain(|(m, _), _| !methods.contains(&m.as_str()));
        }
        let _ = self.notifications.send(notification);
    }

    pub(crate) fn cached(&self, method: &str, key: &str) -> Option<Value> {
        let mut cache = self.cache.lock();
        let k = (method.to_string(), key.to_string());
        match cache.get(&k) {
            Some(c) if c.until > Instant::now() => Some(c.result.clone()),
            Some(_) => {
                cache.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Keeps `result` for as long as its `ttlMs` says (nothing when zero or
    /// absent).
    pub(crate) fn keep(&self, method: &str, key: &str, result: &Value) {
        let ttl = result.get("ttlMs").and_then(Value::as_u64).unwrap_or(0);
        if ttl == 0 {
            return;
        }
        let until = Instant::now() + Duration::from_millis(ttl);
        self.cache.lock().insert(
            (method.to_string(), key.to_string()),
            Cached {
                until,
                result: result.clone(),
            },
        );
    }

    pub(crate) fn listed_tool(&self, tool: &str, headers: Vec<ParamHeader>, tasks: TaskSupport) {
        self.tools
            .write()
            .insert(tool.to_string(), ListedTool { headers, tasks });
    }

    /// A listed tool's `Mcp-Param-*` headers.
    pub(crate) fn tool_headers(&self, tool: &str) -> Vec<ParamHeader> {
        self.tools
            .read()
            .get(tool)
            .map(|t| t.headers.clone())
            .unwrap_or_default()
    }

    /// Whether a listed tool runs as a task.
    pub(crate) fn tool_tasks(&self, tool: &str) -> Option<TaskSupport> {
        self.tools.read().get(tool).map(|t| t.tasks)
    }
}
