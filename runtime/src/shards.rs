//! A hash map split over independently locked shards, shared by the
//! registry and the process groups.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

use parking_lot::RwLock;

pub(crate) struct ShardedMap<K, V> {
    shards: Box<[RwLock<HashMap<K, V>>]>,
    hasher: RandomState,
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    /// A map of `shards` shards (at least one).
    pub(crate) fn new(shards: usize) -> Self {
        ShardedMap {
            shards: (0..shards.max(1))
                .map(|_| RwLock::new(HashMap::new()))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// The shard holding `key`. Which shard that is may change between
    /// versions and must not be relied on.
    pub(crate) fn shard(&self, key: &K) -> &RwLock<HashMap<K, V>> {
        let index = self.hasher.hash_one(key) as usize % self.shards.len();
        &self.shards[index]
    }
}

impl<K, V> ShardedMap<K, V> {
    pub(crate) fn shards(&self) -> &[RwLock<HashMap<K, V>>] {
        &self.shards
    }
}
