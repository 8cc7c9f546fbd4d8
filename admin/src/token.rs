//! The admin listener's bearer token: generated at start (and printed with
//! the endpoints) unless one is configured; compared in constant time.

use axum::http::{header, HeaderMap};
use rand::Rng;
use subtle::ConstantTimeEq;

/// The shortest configured token accepted: anything shorter is guessable.
pub const MIN_TOKEN_LEN: usize = 16;

/// A bearer token for the admin listener.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AdminToken(String);

impl TryFrom<String> for AdminToken {
    type Error = TokenError;

    fn try_from(token: String) -> Result<Self, TokenError> {
        AdminToken::new(token)
    }
}

impl From<AdminToken> for String {
    fn from(token: AdminToken) -> String {
        token.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(…)")
    }
}

/// Why a configured token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Too short to be safe.
    #[error("the admin token must be at least {MIN_TOKEN_LEN} characters, not {0}")]
    TooShort(usize),
    /// It could not travel in a header.
    #[error("the admin token must be printable ASCII without spaces")]
    NotPrintable,
}

impl AdminToken {
    /// A fresh random token (128 bits, hex).
    pub fn generate() -> Self {
        AdminToken(format!("{:032x}", rand::rng().random::<u128>()))
    }

    /// A configured token.
    ///
    /// # Errors
    /// [`TokenError`] when it is shorter than [`MIN_TOKEN_LEN`] or would not
    /// fit in an `Authorization` header.
    pub fn new(token: impl Into<String>) -> Result<Self, TokenError> {
        let token = token.into();
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotPrintable);
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::TooShort(token.len()));
        }
        Ok(AdminToken(token))
    }

    /// The token itself, to print for whoever started the server.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `headers` carry `Authorization: Bearer <this token>`.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .unwrap_or_default();
        given.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_is_admitted() {
        let token = AdminToken::new("0123456789abcdef").unwrap_or_else(|e| panic!("{e}"));
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, header::HeaderValue::from_static(v));
            token.admits(&h)
        };
        assert!(with("Bearer 0123456789abcdef"));
        assert!(!with("Bearer 0123456789abcde"));
        assert!(!with("Bearer 0123456789abcdefg"));
        assert!(!with("Basic 0123456789abcdef"));
        assert!(!token.admits(&HeaderMap::new()));
        assert_eq!(AdminToken::new("short"), Err(TokenError::TooShort(5)));
        assert_eq!(
            AdminToken::new("has a space in it!"),
            Err(TokenError::NotPrintable)
        );
        assert_ne!(AdminToken::generate(), AdminToken::generate());
    }
}
