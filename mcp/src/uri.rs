//! Resource URIs: parsed per RFC 3986, normalised, path traversal refused.
//!
//! A [`ResourceUri`] is an absolute URI (it has a scheme) in its RFC 3986
//! §6.2.2 syntax-normal form: scheme and host lowercased, percent-encoded
//! octets of unreserved characters decoded and the other triplets' hex digits
//! uppercased, dot-segments removed. Equality and hashing are on that form, so
//! `FILE:///a/./b/%7e` and `file:///a/b/~` are the same resource.
//!
//! Traversal is refused rather than normalised away whenever it could reach
//! past the root of the path:
//!
//! - a `..` segment (also `%2e%2e`, `.%2E`, any case) that would climb above
//!   the root of an absolute path (`file:///a/../../etc`);
//! - a `..` left in the normal form, which happens when it is hidden behind
//!   encoded separators (`file:///a/..%2f..%2fetc`, `%5c` likewise), or in a
//!   rootless path (`urn:a/../../b`), where RFC 3986 removes no dot-segments.
//!
//! A `..` that stays inside the path (`file:///a/b/../c`) is removed by
//! normalisation (`file:///a/c`), as RFC 3986 prescribes.

use std::fmt;
use std::str::FromStr;

use fluent_uri::normalize::{NormalizeError, Normalizer};
use fluent_uri::Uri;

/// Default maximum length of a resource URI, in bytes (8 KiB).
pub const DEFAULT_MAX_URI_LEN: usize = 8 * 1024;

/// Why a string is not an acceptable resource URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The input is longer than the limit; it was not parsed.
    #[error("resource uri is {len} bytes long, over the limit of {max} bytes")]
    TooLong {
        /// Length of the input, in bytes.
        len: usize,
        /// The limit in force, in bytes.
        max: usize,
    },
    /// The input is not an absolute URI per RFC 3986.
    #[error("resource uri `{uri}` is invalid at byte {index}: {reason}")]
    Invalid {
        /// The input.
        uri: String,
        /// Byte index in the input where parsing failed.
        index: usize,
        /// What is wrong there.
        reason: String,
    },
    /// The path contains a `..` that could escape its root.
    #[error("resource uri `{uri}` has a path traversal: {reason}")]
    PathTraversal {
        /// The input.
        uri: String,
        /// Which form of traversal was found.
        reason: &'static str,
    },
}

/// A normalised, traversal-free, absolute resource URI (RFC 3986).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceUri {
    /// The normal form.
    normalized: String,
    /// Byte length of the scheme in `normalized`.
    scheme_len: usize,
}

impl ResourceUri {
    /// Parses and normalises `s` with the default length limit
    /// ([`DEFAULT_MAX_URI_LEN`]).
    pub fn parse(s: &str) -> Result<Self, UriError> {
        Self::parse_with_limit(s, DEFAULT_MAX_URI_LEN)
    }

    /// Parses and normalises `s`, refusing inputs longer than `max_len` bytes
    /// before any parsing (an input of exactly `max_len` bytes is accepted).
    pub fn parse_with_limit(s: &str, max_len: usize) -> Result<Self, UriError> {
        if s.len() > max_len {
            return Err(UriError::TooLong {
                len: s.len(),
                max: max_len,
            });
        }
        let uri = Uri::parse(s).map_err(|e| UriError::Invalid {
            uri: s.to_owned(),
            index: e.index(),
            reason: e.to_string(),
        })?;
        let normalized = Normalizer::new()
            .allow_path_underflow(false)
            .normalize(&uri)
            .map_err(|e| match e {
                NormalizeError::PathUnderflow => UriError::PathTraversal {
                    uri: s.to_owned(),
                    reason: "a `..` segment climbs above the root of the path",
                },
            })?;
        if has_residual_dot_dot(normalized.path().as_str()) {
            return Err(UriError::PathTraversal {
                uri: s.to_owned(),
                reason: "a `..` segment remains once percent-encoded separators are decoded",
            });
        }
        let scheme_len = normalized.scheme().as_str().len();
        Ok(Self {
            normalized: normalized.into_string(),
            scheme_len,
        })
    }

    /// The normal form.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// The scheme, lowercase (`file`, `test`, `mcp`, …).
    pub fn scheme(&self) -> &str {
        self.normalized.get(..self.scheme_len).unwrap_or_default()
    }

    /// Consumes the URI, returning its normal form.
    pub fn into_string(self) -> String {
        self.normalized
    }
}

/// Whether a normalised path still holds a `..` piece once percent-decoded and
/// split on `/` and `\`: only encoded separators, or a rootless path (which
/// RFC 3986 does not dot-normalise), can leave one there.
fn has_residual_dot_dot(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
    decoded
        .split(|b| *b == b'/' || *b == b'\\')
        .any(|piece| piece == b"..")
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

impl AsRef<str> for ResourceUri {
    fn as_ref(&self) -> &str {
        &self.normalized
    }
}

impl FromStr for ResourceUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for ResourceUri {
    type Error = UriError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl serde::Serialize for ResourceUri {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.normalized)
    }
}

impl<'de> serde::Deserialize<'de> for ResourceUri {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}
