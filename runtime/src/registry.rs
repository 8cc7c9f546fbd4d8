//! A sharded name registry: name → process, like OTP's local registry or
//! Elixir's `Registry` with unique keys.
//!
//! An entry disappears when its process exits, and a lookup never returns a
//! process that has exited, even in the moment between its exit and the
//! removal of its entry. A restarted process registers its name again.
//!
//! Where it differs from OTP, on purpose: OTP's `register/2` gives a process
//! at most one name (`badarg` for a second); here a process may hold several
//! names, as with Elixir's `Registry` (a session found by its id and by its
//! client). A name still names one live process at a time, as in OTP.

use std::hash::Hash;
use std::sync::{Arc, Weak};

use crate::process::{Pid, ProcessRef, WatchRef};
use crate::shards::ShardedMap;

/// The default number of shards: enough that 2 to 64 threads rarely contend
/// on 100K+ names.
pub const DEFAULT_SHARDS: usize = 64;

/// Why a name could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A live process already holds the name.
    #[error("name {name:?} is already registered to {holder}")]
    AlreadyRegistered {
        /// The name, as text.
        name: String,
        /// The process holding it.
        holder: Pid,
    },
    /// The process to register has already exited.
    #[error("process {0} has exited")]
    NotAlive(Pid),
}

struct Entry {
    process: ProcessRef,
    watch: WatchRef,
}

type Shards<K> = ShardedMap<K, Entry>;

impl<K: Hash + Eq> Shards<K> {
    fn remove_if(&self, name: &K, pid: Pid) {
        let mut shard = self.shard(name).write();
        if shard.get(name).is_some_and(|e| e.process.pid() == pid) {
            shard.remove(name);
        }
    }
}

/// Maps names to processes across independently locked shards.
///
/// Cloning gives another handle to the same registry.
pub struct ShardedRegistry<K = String> {
    inner: Arc<Shards<K>>,
}

impl<K> Clone for ShardedRegistry<K> {
    fn clone(&self) -> Self {
        ShardedRegistry {
            inner: self.inner.clone(),
        }
    }
}

impl<K> std::fmt::Debug for ShardedRegistry<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedRegistry")
            .field("shards", &self.inner.shards().len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone + std::fmt::Debug + Send + Sync + 'static> Default
    for ShardedRegistry<K>
{
    fn default() -> Self {
        Self::with_shards(DEFAULT_SHARDS)
    }
}

impl<K: Hash + Eq + Clone + std::fmt::Debug + Send + Sync + 'static> ShardedRegistry<K> {
    /// A registry with [`DEFAULT_SHARDS`] shards.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with `shards` shards (at least one).
    pub fn with_shards(shards: usize) -> Self {
        ShardedRegistry {
            inner: Arc::new(ShardedMap::new(shards)),
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.inner.shards().len()
    }

    /// Registers `process` under `name` until it exits or is unregistered.
    ///
    /// # Errors
    /// [`RegistryError::AlreadyRegistered`] when a live process holds the
    /// name; [`RegistryError::NotAlive`] when `process` has already exited.
    pub fn register(&self, name: K, process: &ProcessRef) -> Result<(), RegistryError> {
        let mut shard = self.inner.shard(&name).write();
        if let Some(existing) = shard.get(&name) {
            if existing.process.is_alive() {
                return Err(RegistryError::AlreadyRegistered {
                    name: format!("{name:?}"),
                    holder: existing.process.pid(),
                });
            }
        }
        let registry: Weak<Shards<K>> = Arc::downgrade(&self.inner);
        let key = name.clone();
        let pid = process.pid();
        // The callback takes the shard lock, which we hold: if the process
        // exits right now, its entry is removed just after we insert it.
        let watch = process
            .on_exit(move |_| {
                if let Some(registry) = registry.upgrade() {
                    registry.remove_if(&key, pid);
                }
            })
            .map_err(|down| RegistryError::NotAlive(down.pid))?;
        if let Some(stale) = shard.insert(
            name,
            Entry {
                process: process.clone(),
                watch,
            },
        ) {
            stale.process.demonitor(stale.watch);
        }
        Ok(())
    }

    /// The live process registered under `name`.
    pub fn whereis(&self, name: &K) -> Option<ProcessRef> {
        let shard = self.inner.shard(name).read();
        shard
            .get(name)
            .filter(|e| e.process.is_alive())
            .map(|e| e.process.clone())
    }

    /// The typed handle of the lightweight actor registered under `name`.
    pub fn whereis_actor<M: Send + 'static>(&self, name: &K) -> Option<crate::ActorRef<M>> {
        crate::ActorRef::from_process(&self.whereis(name)?)
    }

    /// Removes `name`; returns the process it named, if any.
    pub fn unregister(&self, name: &K) -> Option<ProcessRef> {
        let entry = self.inner.shard(name).write().remove(name)?;
        entry.process.demonitor(entry.watch);
        Some(entry.process)
    }

    /// Removes every name.
    pub fn clear(&self) {
        for shard in self.inner.shards().iter() {
            let entries = std::mem::take(&mut *shard.write());
            for entry in entries.into_values() {
                entry.process.demonitor(entry.watch);
            }
        }
    }

    /// The number of registered names.
    pub fn len(&self) -> usize {
        self.inner.shards().iter().map(|s| s.read().len()).sum()
    }

    /// `true` when no name is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
