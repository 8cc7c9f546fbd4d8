//! What a valid token grants: who, which scopes, until when. A grant ends
//! at its expiry or when the revocation list names it, and what was
//! opened with it (a stream, a connection) ends then too.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

/// Access granted by one valid token.
#[derive(Debug)]
pub struct Grant {
    subject: String,
    scopes: BTreeSet<String>,
    expires: Option<SystemTime>,
    token_id: Option<String>,
    client_id: Option<String>,
    /// The clock skew accepted past `expires`: the grant ends then.
    grace: Duration,
    /// Cancelled when the revocation list names the token or its subject.
    revoked: CancellationToken,
}

/// Why a grant ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The token's `exp` passed.
    Expired,
    /// The revocation list names the token or its subject.
    Revoked,
}

impl Ending {
    /// A word for logs, close reasons and `data.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Ending::Expired => "token_expired",
            Ending::Revoked => "token_revoked",
        }
    }
}

impl Grant {
    /// A grant to `subject` of `scopes`, ending at `expires` (never, if
    /// `None`): what a validated token says.
    pub fn new(
        subject: impl Into<String>,
        scopes: impl IntoIterator<Item = String>,
        expires: Option<SystemTime>,
    ) -> Self {
        Grant {
            subject: subject.into(),
            scopes: scopes.into_iter().collect(),
            expires,
            token_id: None,
            client_id: None,
            grace: Duration::ZERO,
            revoked: CancellationToken::new(),
        }
    }

    /// Ends `grace` after its expiry: the skew a token is accepted with.
    pub(super) fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    pub(super) fn with_ids(mut self, token_id: Option<String>, client_id: Option<String>) -> Self {
        self.token_id = token_id;
        self.client_id = client_id;
        self
    }

    /// Who the token speaks for (`sub`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The scopes granted.
    pub fn scopes(&self) -> &BTreeSet<String> {
        &self.scopes
    }

    /// Whether `scope` is granted.
    pub fn allows(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// When the token expires.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }

    /// The token's id (`jti`), if it has one.
    pub fn token_id(&self) -> Option<&str> {
        self.token_id.as_deref()
    }

    /// The client the token was issued to (`client_id`), if it says.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// Whether it has been revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked.is_cancelled()
    }

    pub(super) fn revoke(&self) {
        self.revoked.cancel();
    }

    /// Resolves when the grant ends: at its expiry (and the clock skew
    /// accepted), or at once when it is revoked. Never, for a token
    /// without `exp` that nobody revokes.
    pub async fn ended(&self) -> Ending {
        let expiry = async {
            match self.expires {
                Some(at) => {
                    let at = at.checked_add(self.grace).unwrap_or(at);
                    let left = at
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO);
                    tokio::time::sleep(left).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.revoked.cancelled() => Ending::Revoked,
            () = expiry => Ending::Expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_grant_ends_at_its_expiry_or_when_revoked() {
        let soon = Grant::new(
            "alice",
            ["a".to_string()],
            Some(SystemTime::now() + Duration::from_secs(3)),
        );
        assert!(soon.allows("a") && !soon.allows("b"));
        assert_eq!(soon.ended().await, Ending::Expired);
        let never = Grant::new("bob", [], None);
        let ending = tokio::time::timeout(Duration::from_secs(3600), never.ended()).await;
        assert!(ending.is_err(), "no exp, not revoked: it does not end");
        never.revoke();
        assert_eq!(never.ended().await, Ending::Revoked);
    }
}
