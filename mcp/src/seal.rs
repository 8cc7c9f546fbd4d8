//! Tamper-evident opaque tokens: pagination cursors, `requestState` (SEP-2322).
//!
//! A token is the URL-safe base64 (no padding) of
//!
//! ```text
//! version (1) || expiry (8, unix ms, big-endian) || nonce (16) || payload || tag (32)
//! ```
//!
//! where `tag` is HMAC-SHA256 under the server's [`SealKey`] over a domain
//! string, the length-prefixed `purpose`, and every byte before the tag. The
//! payload is readable by whoever holds the token (it is signed, not
//! encrypted): put nothing secret in it.
//!
//! [`Sealer::open`] refuses a token that was altered, sealed for another
//! purpose or under another key ([`SealError::BadSignature`]), or whose expiry
//! has passed ([`SealError::Expired`]). [`Sealer::open_once`] also refuses a
//! token it has accepted before ([`SealError::Replayed`]); see there for the
//! bound on its memory.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

/// Default maximum token length, in bytes of its text form (16 KiB).
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;
/// Default number of nonces [`Sealer::open_once`] remembers (100 000).
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 32;
const HEADER_LEN: usize = 1 + 8 + NONCE_LEN;
const DOMAIN: &[u8] = b"arbor-mcp/seal\0";

type HmacSha256 = Hmac<Sha256>;
type Nonce = [u8; NONCE_LEN];

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a token of this format: too long, not base64, too short, unknown version.
    #[error("malformed sealed token: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// The tag does not verify: the token was altered, or sealed for another
    /// purpose or under another key.
    #[error("sealed token signature does not verify (tampered, wrong purpose or wrong key)")]
    BadSignature,
    /// The token's expiry has passed.
    #[error("sealed token expired at {expired_at_unix_ms} ms since the unix epoch")]
    Expired {
        /// The token's expiry, in milliseconds since the unix epoch.
        expired_at_unix_ms: u64,
    },
    /// [`Sealer::open_once`] accepted this token before.
    #[error("sealed token was already used")]
    Replayed,
    /// [`Sealer::open_once`] remembers `capacity` unexpired tokens already and
    /// will not forget one early; the token is refused.
    #[error("replay cache is full ({capacity} unexpired tokens); token refused")]
    ReplayCacheFull {
        /// The cache's capacity.
        capacity: usize,
    },
}

/// A 32-byte server secret for sealing tokens. Its `Debug` form hides the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey([u8; 32]);

impl SealKey {
    /// A fresh random key, from the thread-local CSPRNG of `rand` (ChaCha12
    /// seeded from the operating system).
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// A key from given bytes (for a key shared by several server instances).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, to store it.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(..)")
    }
}

/// Where a [`Sealer`] reads the time.
type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Seals and opens tokens under one [`SealKey`]. Thread-safe; share it by `Arc`.
pub struct Sealer {
    mac: HmacSha256,
    max_token_len: usize,
    clock: Clock,
    replay: Mutex<ReplayCache>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("max_token_len", &self.max_token_len)
            .field("replay_capacity", &self.replay.lock().capacity)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer with the default limits ([`DEFAULT_MAX_TOKEN_LEN`],
    /// [`DEFAULT_REPLAY_CAPACITY`]) and the system clock.
    pub fn new(key: SealKey) -> Self {
        // HMAC zero-pads a key shorter than the hash's block: padding it here
        // gives the same MAC as `new_from_slice`, without a fallible call.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&key.0);
        let mac = HmacSha256::new(&block.into());
        Self {
            mac,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            clock: Arc::new(SystemTime::now),
            replay: Mutex::new(ReplayCache::new(DEFAULT_REPLAY_CAPACITY)),
        }
    }

    /// Sets the longest token text [`open`](Self::open) will decode, in bytes.
    pub fn with_max_token_len(mut self, max: usize) -> Self {
        self.max_token_len = max;
        self
    }

    /// Sets how many unexpired tokens [`open_once`](Self::open_once) remembers.
    pub fn with_replay_capacity(mut self, capacity: usize) -> Self {
        self.replay = Mutex::new(ReplayCache::new(capacity));
        self
    }

    /// Replaces the system clock (for tests, or a coarse shared clock).
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Seals `payload` for `purpose`, valid for `ttl` from now (a zero `ttl`
    /// gives a token that is already expired).
    ///
    /// The token is about `4/3 × (57 + payload.len())` bytes: keep payloads
    /// small enough for the sealer's maximum token length, or the token will
    /// not open.
    pub fn seal(&self, purpose: &str, payload: &[u8], ttl: Duration) -> String {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let expiry = self.now_ms().saturating_add(ttl_ms);
        let nonce: Nonce = rand::random();
        let mut raw = Vec::with_capacity(HEADER_LEN + payload.len() + TAG_LEN);
        raw.push(VERSION);
        raw.extend_from_slice(&expiry.to_be_bytes());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(payload);
        let tag = self.keyed(purpose, &raw).finalize().into_bytes();
        raw.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Opens a token sealed for `purpose`, returning its payload.
    pub fn open(&self, purpose: &str, token: &str) -> Result<Vec<u8>, SealError> {
        self.open_parts(purpose, token).map(|opened| opened.payload)
    }

    /// Opens a token like [`open`](Self::open) and also refuses one whose
    /// nonce was accepted before.
    ///
    /// Accepted nonces are remembered until their token expires (which can
    /// never open again), in at most the configured capacity
    /// ([`DEFAULT_REPLAY_CAPACITY`] by default). When that many unexpired
    /// tokens are remembered, a new token is refused with
    /// [`SealError::ReplayCacheFull`]: forgetting an unexpired one would let it
    /// be replayed. Short ttls keep the cache small. If the clock steps
    /// back, a token whose expiry is at or before the latest time this
    /// sealer has seen counts as expired, so a forgotten nonce cannot return.
    pub fn open_once(&self, purpose: &str, token: &str) -> Result<Vec<u8>, SealError> {
        let opened = self.open_parts(purpose, token)?;
        let mut cache = self.replay.lock();
        cache.accept(opened.nonce, opened.expiry, opened.now)?;
        Ok(opened.payload)
    }

    fn open_parts(&self, purpose: &str, token: &str) -> Result<Opened, SealError> {
        if token.len() > self.max_token_len {
            return Err(malformed(format!(
                "token is {} bytes long, over the limit of {} bytes",
                token.len(),
                self.max_token_len
            )));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|e| malformed(format!("not url-safe base64 without padding: {e}")))?;
        if raw.len() < HEADER_LEN + TAG_LEN {
            return Err(malformed(format!(
                "token decodes to {} bytes, fewer than the minimum of {}",
                raw.len(),
                HEADER_LEN + TAG_LEN
            )));
        }
        let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
        self.keyed(purpose, body)
            .verify_slice(tag)
            .map_err(|_| SealError::BadSignature)?;
        let (header, payload) = body.split_at(HEADER_LEN);
        let (version, rest) = header.split_at(1);
        let (expiry, nonce) = rest.split_at(8);
        if version != [VERSION] {
            return Err(malformed(format!("unknown token version {version:?}")));
        }
        let expiry = u64::from_be_bytes(to_array(expiry)?);
        let nonce: Nonce = to_array(nonce)?;
        let now = self.now_ms();
        if now >= expiry {
            return Err(SealError::Expired {
                expired_at_unix_ms: expiry,
            });
        }
        Ok(Opened {
            payload: payload.to_vec(),
            nonce,
            expiry,
            now,
        })
    }

    /// The MAC keyed and fed with the domain, the purpose and `body`.
    fn keyed(&self, purpose: &str, body: &[u8]) -> HmacSha256 {
        let purpose_len = u64::try_from(purpose.len()).unwrap_or(u64::MAX);
        let mut mac = self.mac.clone();
        mac.update(DOMAIN);
        mac.update(&purpose_len.to_be_bytes());
        mac.update(purpose.as_bytes());
        mac.update(body);
        mac
    }

    fn now_ms(&self) -> u64 {
        let since_epoch = (self.clock)()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A verified, unexpired token's parts.
struct Opened {
    payload: Vec<u8>,
    nonce: Nonce,
    expiry: u64,
    now: u64,
}

fn malformed(reason: String) -> SealError {
    SealError::Malformed { reason }
}

fn to_array<const N: usize>(bytes: &[u8]) -> Result<[u8; N], SealError> {
    bytes
        .try_into()
        .map_err(|_| malformed(format!("header field is {} bytes, not {N}", bytes.len())))
}

/// Nonces of accepted tokens, until their expiry.
struct ReplayCache {
    capacity: usize,
    expiry_of: HashMap<Nonce, u64>,
    by_expiry: BTreeSet<(u64, Nonce)>,
    /// The latest time seen, so that a clock stepping back cannot revive a
    /// token whose nonce was forgotten.
    high_water: u64,
}

impl ReplayCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            expiry_of: HashMap::new(),
            by_expiry: BTreeSet::new(),
            high_water: 0,
        }
    }

    fn accept(&mut self, nonce: Nonce, expiry: u64, now: u64) -> Result<(), SealError> {
        self.high_water = self.high_water.max(now);
        if expiry <= self.high_water {
            return Err(SealError::Expired {
                expired_at_unix_ms: expiry,
            });
        }
        while let Some(&(first_expiry, first_nonce)) = self.by_expiry.first() {
            if first_expiry > self.high_water {
                break;
            }
            self.by_expiry.pop_first();
            self.expiry_of.remove(&first_nonce);
        }
        if self.expiry_of.contains_key(&nonce) {
            return Err(SealError::Replayed);
        }
        if self.expiry_of.len() >= self.capacity {
            return Err(SealError::ReplayCacheFull {
                capacity: self.capacity,
            });
        }
        self.expiry_of.insert(nonce, expiry);
        self.by_expiry.insert((expiry, nonce));
        Ok(())
    }
}
