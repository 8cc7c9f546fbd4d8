//! The revocation list: a file of `jti:ID` and `sub:SUBJECT` lines,
//! checked for changes every `revocation_reload`. A token it names is
//! refused from then on, and every live grant it names is revoked at once,
//! which ends the streams opened with it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};

use super::Grant;

/// What is revoked, and the live grants that a revocation must reach.
#[derive(Debug, Default)]
pub(super) struct Revocations {
    revoked: RwLock<HashSet<String>>,
    /// Live grants by `jti:` and `sub:` entry; dead ones pruned at each
    /// reload tick.
    live: Mutex<HashMap<String, Vec<Weak<Grant>>>>,
}

/// The entries naming `grant`.
fn entries(grant: &Grant) -> impl Iterator<Item = String> + '_ {
    grant
        .token_id()
        .map(|jti| format!("jti:{jti}"))
        .into_iter()
        .chain(std::iter::once(format!("sub:{}", grant.subject())))
}

impl Revocations {
    /// Whether the list names `grant`.
    pub(super) fn names(&self, grant: &Grant) -> bool {
        let revoked = self.revoked.read();
        entries(grant).any(|e| revoked.contains(&e))
    }

    /// Keeps track of `grant`, so that a later revocation reaches it.
    pub(super) fn watch(&self, grant: &Arc<Grant>) {
        let mut live = self.live.lock();
        for entry in entries(grant) {
            let holders = live.entry(entry).or_default();
            if holders.len() >= 8 && holders.len().is_power_of_two() {
                holders.retain(|g| g.strong_count() > 0);
            }
            holders.push(Arc::downgrade(grant));
        }
    }

    /// Replaces the list; revokes the live grants newly named.
    pub(super) fn replace(&self, now: HashSet<String>) -> usize {
        let added: Vec<String> = {
            let old = self.revoked.read();
            now.difference(&old).cloned().collect()
        };
        *self.revoked.write() = now;
        let mut revoked = 0;
        let mut live = self.live.lock();
        for entry in &added {
            for grant in live.remove(entry).unwrap_or_default() {
                if let Some(grant) = grant.upgrade() {
                    grant.revoke();
                    revoked += 1;
                }
            }
        }
        drop(live);
        self.prune();
        revoked
    }

    /// Forgets the grants nobody holds any more.
    pub(super) fn prune(&self) {
        self.live.lock().retain(|_, holders| {
            holders.retain(|g| g.strong_count() > 0);
            !holders.is_empty()
        });
    }
}

/// Parses a revocation list.
pub(super) fn parse(text: &str) -> HashSet<String> {
    // `#` starts a comment at the start of a line or after a space, so an
    // id may hold one.
    text.lines()
        .map(|line| line.split(" #").next().unwrap_or("").trim())
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with("jti:") || line.starts_with("sub:"))
        .map(str::to_string)
        .collect()
}

/// Reads the list at `path` into `into` now, then again whenever the file
/// changes, until `into` is dropped. A file that cannot be read keeps the
/// list as it was (and says so): a revocation is never undone by an error.
/// Write the file whole (a new file renamed over it): a read half-way
/// through a write would see the list cut short.
pub(super) fn reload(path: PathBuf, every: Duration, into: Weak<super::Inner>) {
    tokio::spawn(async move {
        let mut seen: Option<(SystemTime, u64)> = None;
        loop {
            let Some(inner) = into.upgrade() else { return };
            let stamp = tokio::fs::metadata(&path)
                .await
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            if stamp.is_some() && stamp != seen {
                match tokio::fs::read_to_string(&path).await {
                    Ok(text) => {
                        seen = stamp;
                        let list = parse(&text);
                        let entries = list.len();
                        let ended = inner.revocations.replace(list);
                        metrics::gauge!("arbor_auth_revoked_entries").set(entries as f64);
                        tracing::info!(target: "arbor::auth", entries, ended, path = %path.display(), "revocation list loaded");
                    }
                    Err(e) => {
                        tracing::warn!(target: "arbor::auth", path = %path.display(), "revocation list unreadable, kept as it was: {e}");
                    }
                }
            }
            inner.revocations.prune();
            drop(inner);
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_entry_revokes_the_live_grants_it_names() {
        let list = Revocations::default();
        let alice = Arc::new(Grant::new("alice", [], None).with_ids(Some("t1".into()), None));
        let bob = Arc::new(Grant::new("bob", [], None).with_ids(Some("t2".into()), None));
        list.watch(&alice);
        list.watch(&bob);
        assert_eq!(list.replace(parse("# revoked\njti:t1\nnonsense\n")), 1);
        assert!(alice.is_revoked() && !bob.is_revoked());
        assert!(list.names(&alice) && !list.names(&bob));
        assert_eq!(list.replace(parse("jti:t1\nsub:bob")), 1);
        assert!(bob.is_revoked());
    }
}
