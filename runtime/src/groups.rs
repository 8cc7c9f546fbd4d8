//! Process groups: named sets of processes, like OTP's `pg`.
//!
//! A process leaves every group when it exits. Groups are how notifications
//! fan out to many subscribers.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Weak};

use crate::process::{Pid, ProcessRef, WatchRef};
use crate::registry::DEFAULT_SHARDS;
use crate::shards::ShardedMap;

type Members = HashMap<Pid, (ProcessRef, WatchRef)>;

type Shards<G> = ShardedMap<G, Members>;

impl<G: Hash + Eq> Shards<G> {
    fn remove(&self, group: &G, pid: Pid) -> Option<(ProcessRef, WatchRef)> {
        let mut shard = self.shard(group).write();
        let members = shard.get_mut(group)?;
        let removed = members.remove(&pid);
        if members.is_empty() {
            shard.remove(group);
        }
        removed
    }
}

/// Named groups of processes, sharded by group name.
///
/// Cloning gives another handle to the same groups.
pub struct ProcessGroups<G = String> {
    inner: Arc<Shards<G>>,
}

impl<G> Clone for ProcessGroups<G> {
    fn clone(&self) -> Self {
        ProcessGroups {
            inner: self.inner.clone(),
        }
    }
}

impl<G> std::fmt::Debug for ProcessGroups<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroups")
            .field("shards", &self.inner.shards().len())
            .finish()
    }
}

impl<G: Hash + Eq + Clone + Send + Sync + 'static> Default for ProcessGroups<G> {
    fn default() -> Self {
        Self::with_shards(DEFAULT_SHARDS)
    }
}

impl<G: Hash + Eq + Clone + Send + Sync + 'static> ProcessGroups<G> {
    /// Groups with the default number of shards.
    pub fn new() -> Self {
        Self::default()
    }

    /// Groups with `shards` shards (at least one).
    pub fn with_shards(shards: usize) -> Self {
        ProcessGroups {
            inner: Arc::new(ShardedMap::new(shards)),
        }
    }

    /// Adds `process` to `group`. Returns `false` if it was already a member
    /// or has already exited.
    pub fn join(&self, group: G, process: &ProcessRef) -> bool {
        let mut shard = self.inner.shard(&group).write();
        let members = shard.entry(group.clone()).or_default();
        if members.contains_key(&process.pid()) {
            return false;
        }
        let groups: Weak<Shards<G>> = Arc::downgrade(&self.inner);
        let key = group.clone();
        let pid = process.pid();
        match process.on_exit(move |_| {
            if let Some(groups) = groups.upgrade() {
                groups.remove(&key, pid);
            }
        }) {
            Ok(watch) => {
                members.insert(pid, (process.clone(), watch));
                true
            }
            Err(_) => {
                if members.is_empty() {
                    shard.remove(&group);
                }
                false
            }
        }
    }

    /// Removes `process` from `group`. Returns `false` if it was not a member.
    pub fn leave(&self, group: &G, process: &ProcessRef) -> bool {
        match self.inner.remove(group, process.pid()) {
            Some((member, watch)) => {
                member.demonitor(watch);
                true
            }
            None => false,
        }
    }

    /// The live members of `group`, in no particular order.
    pub fn members(&self, group: &G) -> Vec<ProcessRef> {
        let shard = self.inner.shard(group).read();
        shard
            .get(group)
            .map(|m| {
                m.values()
                    .filter(|(p, _)| p.is_alive())
                    .map(|(p, _)| p.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Calls `f` for each live member of `group` without collecting them.
    ///
    /// `f` runs under the group's shard lock: it must not join or leave
    /// groups of the same shard.
    pub fn for_each_member(&self, group: &G, mut f: impl FnMut(&ProcessRef)) {
        let shard = self.inner.shard(group).read();
        if let Some(members) = shard.get(group) {
            members
                .values()
                .filter(|(p, _)| p.is_alive())
                .for_each(|(p, _)| f(p));
        }
    }

    /// The number of live members of `group`.
    pub fn member_count(&self, group: &G) -> usize {
        self.inner
            .shard(group)
            .read()
            .get(group)
            .map_or(0, |m| m.values().filter(|(p, _)| p.is_alive()).count())
    }

    /// Every group that has at least one member.
    pub fn groups(&self) -> Vec<G> {
        self.inner
            .shards()
            .iter()
            .flat_map(|s| s.read().keys().cloned().collect::<Vec<_>>())
            .collect()
    }
}
