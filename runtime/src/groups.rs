//! Process groups: named groups of processes, as OTP's `pg`.
//!
//! As in `pg`, a process may join a group several times: each join is a
//! membership, [`ProcessGroups::members`] lists it once per membership, and
//! each [`ProcessGroups::leave`] removes one. A process leaves every group
//! when it exits. Groups are how notifications fan out to many subscribers.
//!
//! Unlike `pg`, a membership may carry a value of the joiner's choosing
//! ([`ProcessGroups::join_with`]): what a member should be told through,
//! typed, so whoever fans out needs no downcast of the process to find out.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Weak};

use crate::process::{Pid, ProcessRef, WatchRef};
use crate::registry::DEFAULT_SHARDS;
use crate::shards::ShardedMap;

/// One process's memberships of a group.
struct Member<V> {
    process: ProcessRef,
    /// Removes the process from the group when it exits.
    watch: WatchRef,
    /// How many times it has joined and not left (at least 1).
    joins: usize,
    /// What it joined with (its first join's).
    value: V,
}

type Members<V> = HashMap<Pid, Member<V>>;

type Shards<G, V> = ShardedMap<G, Members<V>>;

/// Removes every membership of `pid`.
fn remove<G: Hash + Eq, V>(shards: &Shards<G, V>, group: &G, pid: Pid) -> Option<Member<V>> {
    let mut shard = shards.shard(group).write();
    let members = shard.get_mut(group)?;
    let removed = members.remove(&pid);
    if members.is_empty() {
        shard.remove(group);
    }
    removed
}

/// Named groups of processes, sharded by group name; each membership
/// carries a `V` (nothing by default).
///
/// Cloning gives another handle to the same groups.
pub struct ProcessGroups<G = String, V = ()> {
    inner: Arc<Shards<G, V>>,
}

impl<G, V> Clone for ProcessGroups<G, V> {
    fn clone(&self) -> Self {
        ProcessGroups {
            inner: self.inner.clone(),
        }
    }
}

impl<G, V> std::fmt::Debug for ProcessGroups<G, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroups")
            .field("shards", &self.inner.shards().len())
            .finish()
    }
}

impl<G: Hash + Eq + Clone + Send + Sync + 'static, V: Send + Sync + 'static> Default
    for ProcessGroups<G, V>
{
    fn default() -> Self {
        Self::with_shards(DEFAULT_SHARDS)
    }
}

impl<G: Hash + Eq + Clone + Send + Sync + 'static> ProcessGroups<G> {
    /// Adds a membership of `process` to `group` (OTP's `pg:join/2`): a
    /// process that joins twice is a member twice. Returns `false`, adding
    /// nothing, if it has already exited.
    pub fn join(&self, group: G, process: &ProcessRef) -> bool {
        self.join_with(group, process, ())
    }
}

impl<G: Hash + Eq + Clone + Send + Sync + 'static, V: Send + Sync + 'static> ProcessGroups<G, V> {
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

    /// As [`ProcessGroups::join`], the membership carrying `value`; a
    /// process already a member keeps the value it first joined with.
    pub fn join_with(&self, group: G, process: &ProcessRef, value: V) -> bool {
        let mut shard = self.inner.shard(&group).write();
        let members = shard.entry(group.clone()).or_default();
        if let Some(member) = members.get_mut(&process.pid()) {
            member.joins += 1;
            return true;
        }
        let groups: Weak<Shards<G, V>> = Arc::downgrade(&self.inner);
        let key = group.clone();
        let pid = process.pid();
        match process.on_exit(move |_| {
            if let Some(groups) = groups.upgrade() {
                remove(&groups, &key, pid);
            }
        }) {
            Ok(watch) => {
                members.insert(
                    pid,
                    Member {
                        process: process.clone(),
                        watch,
                        joins: 1,
                        value,
                    },
                );
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

    /// Removes one membership of `process` from `group` (OTP's
    /// `pg:leave/2`). Returns `false` if it was not a member.
    pub fn leave(&self, group: &G, process: &ProcessRef) -> bool {
        {
            let mut shard = self.inner.shard(group).write();
            let Some(member) = shard.get_mut(group).and_then(|m| m.get_mut(&process.pid())) else {
                return false;
            };
            if member.joins > 1 {
                member.joins -= 1;
                return true;
            }
        }
        match remove(&self.inner, group, process.pid()) {
            Some(member) => {
                member.process.demonitor(member.watch);
                true
            }
            None => false,
        }
    }

    /// The live members of `group`, in no particular order, each as many
    /// times as it has joined (OTP's `pg:get_members/1`).
    pub fn members(&self, group: &G) -> Vec<ProcessRef> {
        let mut all = Vec::new();
        self.for_each_member(group, |p| all.push(p.clone()));
        all
    }

    /// Calls `f` for each live membership of `group` without collecting
    /// them: once per join, as [`ProcessGroups::members`] lists them.
    ///
    /// `f` runs under the group's shard lock: it must not join or leave
    /// groups of the same shard.
    pub fn for_each_member(&self, group: &G, mut f: impl FnMut(&ProcessRef)) {
        self.for_each_value(group, |process, _| f(process));
    }

    /// As [`ProcessGroups::for_each_member`], with each membership's value.
    pub fn for_each_value(&self, group: &G, mut f: impl FnMut(&ProcessRef, &V)) {
        let shard = self.inner.shard(group).read();
        if let Some(members) = shard.get(group) {
            for member in members.values().filter(|m| m.process.is_alive()) {
                for _ in 0..member.joins {
                    f(&member.process, &member.value);
                }
            }
        }
    }

    /// The number of live memberships of `group`.
    pub fn member_count(&self, group: &G) -> usize {
        self.inner.shard(group).read().get(group).map_or(0, |m| {
            m.values()
                .filter(|m| m.process.is_alive())
                .map(|m| m.joins)
                .sum()
        })
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
