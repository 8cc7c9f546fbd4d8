//! The idempotency extension (`io.arbor/idempotency`): a client that may
//! retry a call (its connection dropped before the answer came) sends a
//! key in the request's `_meta`; for a tool marked
//! [`Tool::idempotency_keyed`](crate::Tool::idempotency_keyed), a repeat
//! with the same key and the same arguments within the TTL is answered the
//! first call's result without running the handler again.
//!
//! - The key is `_meta["io.arbor/idempotencyKey"]`: 1 to 255 printable
//!   ASCII characters (a UUID, say). A malformed one is `-32602`.
//! - Keys are the principal's own ([`Principal`]): the client's address
//!   until authorization names who is calling. One principal cannot
//!   replay another's result by guessing its key.
//! - The same key with other arguments (or another tool) is `-32033`
//!   (`data.reason = "mismatch"`): a client bug, never a silent replay.
//! - A repeat while the first call still runs waits for it and gets its
//!   result. A first call that ends without a result (a JSON-RPC error, a
//!   cancel, a timeout, input asked for) leaves nothing behind: the next
//!   call with that key runs.
//! - A replayed result carries `_meta["io.arbor/idempotentReplay"] = true`.
//! - The store is bounded: `max_keys` per principal (the oldest finished
//!   one makes room) and `max_entries` in all (past it, new keys are
//!   `-32033` with `data.reason = "full"` until entries expire).
//!
//! The server declares the extension when a tool is keyed: under
//! `extensions` (2026-07-28) or `experimental` (the handshake era), with
//! its `ttlMs`; the keyed tools carry `_meta["io.arbor/idempotency"] =
//! "keyed"` in `tools/list`. Task-augmented calls are not keyed (a task is
//! already a handle the client can poll again).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::jsonrpc::{code, ErrorObject};

/// The extension's identifier, as declared in capabilities.
pub const EXTENSION: &str = "io.arbor/idempotency";
/// The `_meta` key of a request's idempotency key.
pub const KEY: &str = "io.arbor/idempotencyKey";
/// The `_meta` key set on a replayed result.
pub const REPLAYED: &str = "io.arbor/idempotentReplay";
/// The `_meta` key that marks a keyed tool in `tools/list`.
pub const TOOL_MARK: &str = "io.arbor/idempotency";
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// The store's settings (`[server.idempotency]`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// How long after a keyed call starts a repeat is answered from the
    /// store. Default: 10 minutes.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Keys kept per principal. Default: 1000.
    pub max_keys: usize,
    /// Keys kept in all. Default: 100 000.
    pub max_entries: usize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            ttl: Duration::from_secs(600),
            max_keys: 1000,
            max_entries: 100_000,
        }
    }
}

/// Whose keys these are.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// The subject of the client's access token, when the server checks
    /// tokens ([`crate::auth`]): its keys follow it across addresses.
    Subject(String),
    /// A client known by its address (TCP, WebSocket, HTTP), when the
    /// server checks no tokens.
    Address(IpAddr),
    /// A client with no address: the process's own (stdio), or a transport
    /// that does not say.
    Local,
}

impl Principal {
    /// The principal of a client at `address`, if known.
    pub fn of(address: Option<IpAddr>) -> Self {
        address.map_or(Principal::Local, Principal::Address)
    }
}

/// A request's idempotency key, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// Whose.
    pub principal: Principal,
    /// The key the client sent.
    pub key: Arc<str>,
}

/// The key in a request's `_meta`, if any.
///
/// # Errors
/// `-32602` when it is not a string of 1 to [`MAX_KEY_LEN`] printable ASCII
/// characters.
pub fn key_in(
    meta: Option<&Value>,
    principal: Principal,
) -> Result<Option<IdempotencyKey>, ErrorObject> {
    let Some(raw) = meta.and_then(|m| m.get(KEY)) else {
        return Ok(None);
    };
    let key = raw
        .as_str()
        .filter(|k| (1..=MAX_KEY_LEN).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ErrorObject::invalid_params(format!(
                "_meta.{KEY} must be a string of 1 to {MAX_KEY_LEN} printable ASCII characters"
            ))
            .with_data(json!({ "field": format!("_meta.{KEY}") }))
        })?;
    Ok(Some(IdempotencyKey {
        principal,
        key: key.into(),
    }))
}

/// What a keyed call is, for telling a repeat from a reuse: the tool and its
/// arguments, hashed in a form independent of key order.
pub(crate) fn fingerprint(tool: &str, args: &Value) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tool.as_bytes());
    hasher.update([0]);
    canonical(args, &mut hasher);
    hasher.finalize().into()
}

fn canonical(value: &Value, out: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.update(b"{");
            for k in keys {
                out.update(serde_json::to_string(k).unwrap_or_default().as_bytes());
                out.update(b":");
                if let Some(v) = map.get(k) {
                    canonical(v, out);
                }
                out.update(b",");
            }
            out.update(b"}");
        }
        Value::Array(items) => {
            out.update(b"[");
            for v in items {
                canonical(v, out);
                out.update(b",");
            }
            out.update(b"]");
        }
        scalar => out.update(scalar.to_string().as_bytes()),
    }
}

/// The keys of every principal.
#[derive(Debug)]
pub(crate) struct Store {
    config: IdempotencyConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    principals: HashMap<Principal, Keys>,
    entries: usize,
}

/// One principal's keys, oldest first.
#[derive(Debug, Default)]
struct Keys {
    map: HashMap<Arc<str>, Entry>,
    order: VecDeque<Arc<str>>,
}

#[derive(Debug)]
struct Entry {
    fingerprint: [u8; 32],
    started: Instant,
    state: State,
}

#[derive(Debug)]
enum State {
    /// The first call runs; its sender is dropped when it ends, waking the
    /// repeats that wait.
    Running(watch::Sender<()>),
    /// It answered this.
    Done(Value),
}

/// What a keyed call does.
pub(crate) enum Begin<'a> {
    /// Run the handler and hand its result to the claim.
    Run(Claim<'a>),
    /// Answer this, the first call's result.
    Replay(Value),
    /// The first call still runs: wait, then begin again.
    Wait(watch::Receiver<()>),
}

/// The first call's hold on its key: completed with its result, or, when
/// dropped without one, the key is given up.
pub(crate) struct Claim<'a> {
    store: &'a Store,
    key: IdempotencyKey,
    done: bool,
}

impl Store {
    pub(crate) fn new(config: IdempotencyConfig) -> Self {
        Store {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn config(&self) -> &IdempotencyConfig {
        &self.config
    }

    /// Looks `key` up for a call with `fingerprint`.
    ///
    /// # Errors
    /// `-32033`: the key was used with other arguments, or the store is
    /// full.
    pub(crate) fn begin(
        &self,
        key: &IdempotencyKey,
        fingerprint: [u8; 32],
    ) -> Result<Begin<'_>, ErrorObject> {
        let now = Instant::now();
        let ttl = self.config.ttl;
        let mut inner = self.inner.lock();
        let Inner {
            principals,
            entries,
        } = &mut *inner;
        let keys = principals.entry(key.principal.clone()).or_default();
        *entries -= keys.expire(now, ttl);
        if let Some(entry) = keys.map.get(&key.key) {
            if entry.fingerprint != fingerprint {
                metrics::counter!("arbor_mcp_idempotency_refused_total", "reason" => "mismatch")
                    .increment(1);
                return Err(conflict(
                    "idempotency key reused with other arguments",
                    json!({ "reason": "mismatch", "key": &*key.key }),
                ));
            }
            return Ok(match &entry.state {
                State::Done(result) => {
                    metrics::counter!("arbor_mcp_idempotent_replays_total").increment(1);
                    Begin::Replay(result.clone())
                }
                State::Running(done) => Begin::Wait(done.subscribe()),
            });
        }
        if keys.map.len() >= self.config.max_keys.max(1) {
            if !keys.evict_oldest_done() {
                metrics::counter!("arbor_mcp_idempotency_refused_total", "reason" => "full")
                    .increment(1);
                return Err(conflict(
                    "too many idempotent calls in flight for this client",
                    json!({ "reason": "full", "maxKeys": self.config.max_keys }),
                ));
            }
            *entries -= 1;
        }
        if *entries >= self.config.max_entries {
            metrics::counter!("arbor_mcp_idempotency_refused_total", "reason" => "full")
                .increment(1);
            return Err(conflict(
                "the idempotency store is full; retry later",
                json!({ "reason": "full", "maxEntries": self.config.max_entries }),
            ));
        }
        keys.map.insert(
            key.key.clone(),
            Entry {
                fingerprint,
                started: now,
                state: State::Running(watch::Sender::new(())),
            },
        );
        keys.order.push_back(key.key.clone());
        *entries += 1;
        metrics::gauge!("arbor_mcp_idempotency_keys").set(*entries as f64);
        Ok(Begin::Run(Claim {
            store: self,
            key: key.clone(),
            done: false,
        }))
    }

    /// Keys held now, all principals together.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().entries
    }

    fn finish(&self, key: &IdempotencyKey, result: Option<Value>) {
        let mut inner = self.inner.lock();
        let Inner {
            principals,
            entries,
        } = &mut *inner;
        let Some(keys) = principals.get_mut(&key.principal) else {
            return;
        };
        match result {
            Some(result) => {
                if let Some(entry) = keys.map.get_mut(&key.key) {
                    entry.state = State::Done(result);
                }
            }
            None => {
                if keys.map.remove(&key.key).is_some() {
                    keys.order.retain(|k| *k != key.key);
                    *entries -= 1;
                }
            }
        }
        if keys.map.is_empty() {
            principals.remove(&key.principal);
        }
    }
}

impl Keys {
    /// Drops the finished entries past their TTL from the front; how many.
    fn expire(&mut self, now: Instant, ttl: Duration) -> usize {
        let mut dropped = 0;
        while let Some(oldest) = self.order.front() {
            let expired = self.map.get(oldest).is_none_or(|e| {
                matches!(e.state, State::Done(_)) && now.saturating_duration_since(e.started) >= ttl
            });
            if !expired {
                break;
            }
            if let Some(k) = self.order.pop_front() {
                dropped += usize::from(self.map.remove(&k).is_some());
            }
        }
        dropped
    }

    /// Drops the oldest finished entry; whether there was one.
    fn evict_oldest_done(&mut self) -> bool {
        let Some(at) = self
            .order
            .iter()
            .position(|k| matches!(self.map.get(k).map(|e| &e.state), Some(State::Done(_))))
        else {
            return false;
        };
        if let Some(k) = self.order.remove(at) {
            self.map.remove(&k);
        }
        true
    }
}

impl Claim<'_> {
    /// Keeps `result` as the key's answer for repeats.
    pub(crate) fn complete(mut self, result: &Value) {
        self.done = true;
        self.store.finish(&self.key, Some(result.clone()));
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.store.finish(&self.key, None);
        }
    }
}

impl crate::server::or_off::Expected for IdempotencyConfig {
    const EXPECTED: &'static str =
        "expected a table of the idempotency store's settings (ttl, max_keys, max_entries), \
         or false for none";
}

fn conflict(message: &str, data: Value) -> ErrorObject {
    ErrorObject::new(code::IDEMPOTENCY_CONFLICT, message).with_data(data)
}

/// `result` marked as a replay, for the client to tell.
pub(crate) fn replayed(mut result: Value) -> Value {
    if let Some(object) = result.as_object_mut() {
        let meta = object
            .entry("_meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(REPLAYED.into(), Value::Bool(true));
        }
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey {
            principal: Principal::Local,
            key: k.into(),
        }
    }

    fn store(max_keys: usize, max_entries: usize) -> Store {
        Store::new(IdempotencyConfig {
            max_keys,
            max_entries,
            ..IdempotencyConfig::default()
        })
    }

    #[test]
    fn the_fingerprint_ignores_key_order_but_not_values_or_the_tool() {
        let a = fingerprint("t", &json!({"x": 1, "y": [1, {"b": 2, "a": 1}]}));
        let b = fingerprint("t", &json!({"y": [1, {"a": 1, "b": 2}], "x": 1}));
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint("t", &json!({"x": 2, "y": [1, {"a": 1, "b": 2}]}))
        );
        assert_ne!(
            a,
            fingerprint("u", &json!({"x": 1, "y": [1, {"a": 1, "b": 2}]}))
        );
    }

    #[test]
    fn a_completed_key_replays_and_a_dropped_claim_gives_the_key_up() {
        let s = store(10, 10);
        let f = fingerprint("t", &json!({}));
        let Ok(Begin::Run(claim)) = s.begin(&key("a"), f) else {
            panic!("first call runs");
        };
        assert!(matches!(s.begin(&key("a"), f), Ok(Begin::Wait(_))));
        claim.complete(&json!({"n": 1}));
        assert!(matches!(s.begin(&key("a"), f), Ok(Begin::Replay(v)) if v == json!({"n": 1})));
        let mismatch = s.begin(&key("a"), fingerprint("t", &json!({"x": 1})));
        assert_eq!(mismatch.err().unwrap().data.unwrap()["reason"], "mismatch");

        let Ok(Begin::Run(claim)) = s.begin(&key("b"), f) else {
            panic!("another key runs");
        };
        drop(claim);
        assert!(matches!(s.begin(&key("b"), f), Ok(Begin::Run(_))));
        assert_eq!(s.len(), 1, "b given up again when that claim dropped");
    }

    #[test]
    fn at_max_keys_the_oldest_finished_key_makes_room_and_max_entries_refuses() {
        let s = store(2, 3);
        let f = fingerprint("t", &json!({}));
        for k in ["a", "b"] {
            let Ok(Begin::Run(c)) = s.begin(&key(k), f) else {
                panic!()
            };
            c.complete(&json!(k));
        }
        let Ok(Begin::Run(c)) = s.begin(&key("c"), f) else {
            panic!()
        };
        c.complete(&json!("c"));
        assert_eq!(s.len(), 2);
        // a was evicted to make room (the oldest finished): it runs again,
        // and its claim holds its place.
        let Ok(Begin::Run(_a)) = s.begin(&key("a"), f) else {
            panic!("a made room and runs again")
        };
        assert_eq!(s.len(), 2);

        let other = |k: &str| IdempotencyKey {
            principal: Principal::Address([10, 0, 0, 1].into()),
            key: k.into(),
        };
        // c and a: 2 entries; another principal's key fills the 3.
        let Ok(Begin::Run(c)) = s.begin(&other("x"), f) else {
            panic!()
        };
        c.complete(&json!("x"));
        let full = s.begin(&other("y"), f).err().unwrap();
        assert_eq!(full.code, code::IDEMPOTENCY_CONFLICT);
        assert_eq!(full.data.unwrap()["reason"], "full");
    }

    #[test]
    fn finished_keys_expire_after_the_ttl() {
        let s = Store::new(IdempotencyConfig {
            ttl: Duration::from_millis(20),
            ..IdempotencyConfig::default()
        });
        let f = fingerprint("t", &json!({}));
        let Ok(Begin::Run(c)) = s.begin(&key("a"), f) else {
            panic!()
        };
        c.complete(&json!(1));
        std::thread::sleep(Duration::from_millis(30));
        assert!(matches!(s.begin(&key("a"), f), Ok(Begin::Run(_))));
    }

    #[test]
    fn malformed_keys_are_invalid_params() {
        for bad in [
            json!(""),
            json!(7),
            json!("has space"),
            json!("x".repeat(256)),
        ] {
            let meta = json!({ KEY: bad });
            let e = key_in(Some(&meta), Principal::Local).err().unwrap();
            assert_eq!(e.code, code::INVALID_PARAMS);
        }
        let meta = json!({ KEY: "3f1c-uuid" });
        let k = key_in(Some(&meta), Principal::Local).unwrap().unwrap();
        assert_eq!(&*k.key, "3f1c-uuid");
        assert!(key_in(None, Principal::Local).unwrap().is_none());
    }
}
