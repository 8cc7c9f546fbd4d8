//! A dynamic supervisor sharded N ways, as Elixir's `PartitionSupervisor`:
//! N [`DynamicSupervisor`]s under one one_for_one supervisor, so that starts,
//! exits and restarts of many children do not queue behind one mailbox.
//!
//! The handle stays valid across restarts: each shard writes itself into a
//! slot of the handle when it starts. On shutdown the shards stop together,
//! so the time to stop is one shard's, not the sum of all.

use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arbor_runtime::{CallError, Pid};
use parking_lot::RwLock;

use crate::cascade::{Cascade, Isolation};
use crate::dynamic::{DynamicSupervisor, DynamicSupervisorRef};
use crate::spec::{ChildHandle, ChildId, ChildSpec, Started};
use crate::supervisor::{ChildCounts, ChildError, StartError, Strategy, Supervisor, SupervisorRef};

/// Where a shard writes itself when it starts (empty while it restarts).
type ShardSlot<A, H> = RwLock<Option<DynamicSupervisorRef<A, H>>>;

struct Slots<A, H> {
    parent: RwLock<Option<SupervisorRef>>,
    shards: Box<[ShardSlot<A, H>]>,
    next: AtomicUsize,
    hasher: RandomState,
    cascade: RwLock<Option<Cascade>>,
}

/// The specification of a sharded dynamic supervisor.
pub struct ShardedDynamicSupervisor<A, H> {
    shard: DynamicSupervisor<A, H>,
    slots: Arc<Slots<A, H>>,
}

impl<A, H> std::fmt::Debug for ShardedDynamicSupervisor<A, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedDynamicSupervisor")
            .field("shards", &self.slots.shards.len())
            .field("shard", &self.shard)
            .finish()
    }
}

impl<A: Send + 'static, H: ChildHandle> ShardedDynamicSupervisor<A, H> {
    /// `shards` copies of `shard` (at least one), each started as `shard-I`.
    pub fn new(shards: usize, shard: DynamicSupervisor<A, H>) -> Self {
        let shards = (0..shards.max(1)).map(|_| RwLock::new(None)).collect();
        ShardedDynamicSupervisor {
            shard,
            slots: Arc::new(Slots {
                parent: RwLock::new(None),
                shards,
                next: AtomicUsize::new(0),
                hasher: RandomState::new(),
                cascade: RwLock::new(None),
            }),
        }
    }

    /// A handle that reaches whichever shards are running now; valid before
    /// the supervisor starts and across its restarts.
    pub fn handle(&self) -> ShardedDynamicRef<A, H> {
        ShardedDynamicRef {
            slots: self.slots.clone(),
        }
    }

    /// Counts the children's abnormal exits, over all shards together, in
    /// `cascade` (see [`crate::cascade`]); a tripped cascade isolates every
    /// shard at once.
    pub fn cascade(mut self, cascade: Cascade) -> Self {
        *self.slots.cascade.write() = Some(cascade.clone());
        self.shard = self.shard.cascade(cascade);
        self
    }

    fn parent_spec(&self, name: ChildId) -> Supervisor {
        (0..self.slots.shards.len()).fold(
            // Shards are independent: they stop (and drain) together.
            Supervisor::new(Strategy::OneForOne)
                .name(name)
                .stop_together(),
            |sup, i| {
                let shard = self.shard.clone().name(format!("shard-{i}"));
                let slots = self.slots.clone();
                sup.child(ChildSpec::supervisor(format!("shard-{i}"), move || {
                    let (shard, slots) = (shard.clone(), slots.clone());
                    async move {
                        let started = shard.start().await?;
                        *slots.shards[i].write() = Some(started.clone());
                        Ok::<_, StartError>(started.supervisor().clone())
                    }
                }))
            },
        )
    }

    /// Starts the shards under their own one_for_one supervisor.
    ///
    /// # Errors
    /// A [`StartError`] if a shard fails to start.
    pub async fn start(self) -> Result<ShardedDynamicRef<A, H>, StartError> {
        let parent = self.parent_spec("sharded".into()).start().await?;
        *self.slots.parent.write() = Some(parent);
        Ok(self.handle())
    }

    /// The sharded supervisor as a child of another supervisor.
    pub fn into_child_spec(self, id: impl Into<ChildId>) -> ChildSpec {
        let id = id.into();
        let parent = self.parent_spec(id.clone());
        let slots = self.slots.clone();
        ChildSpec::supervisor(id, move || {
            let (parent, slots) = (parent.clone(), slots.clone());
            async move {
                let started = parent.start().await?;
                *slots.parent.write() = Some(started.clone());
                Ok::<_, StartError>(started)
            }
        })
    }
}

/// A handle to a sharded dynamic supervisor.
pub struct ShardedDynamicRef<A, H> {
    slots: Arc<Slots<A, H>>,
}

impl<A, H> Clone for ShardedDynamicRef<A, H> {
    fn clone(&self) -> Self {
        ShardedDynamicRef {
            slots: self.slots.clone(),
        }
    }
}

impl<A, H> std::fmt::Debug for ShardedDynamicRef<A, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedDynamicRef")
            .field("shards", &self.slots.shards.len())
            .finish()
    }
}

impl<A: Send + 'static, H: ChildHandle> ShardedDynamicRef<A, H> {
    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.slots.shards.len()
    }

    /// The one_for_one supervisor over the shards, once started.
    pub fn supervisor(&self) -> Option<SupervisorRef> {
        self.slots.parent.read().clone()
    }

    /// The isolation its cascade holds it in, if any: a listener in front
    /// of it refuses new work while there is one.
    pub fn isolation(&self) -> Option<Isolation> {
        self.slots
            .cascade
            .read()
            .as_ref()
            .and_then(Cascade::isolation)
    }

    /// The running shards.
    pub fn shards(&self) -> Vec<DynamicSupervisorRef<A, H>> {
        self.slots
            .shards
            .iter()
            .filter_map(|s| s.read().clone())
            .collect()
    }

    fn shard(&self, index: usize) -> Option<DynamicSupervisorRef<A, H>> {
        self.slots.shards[index % self.slots.shards.len()]
            .read()
            .clone()
    }

    /// Starts a child on the next shard in turn, passing over shards that
    /// are down or restarting.
    ///
    /// # Errors
    /// As [`DynamicSupervisorRef::start_child`]; [`ChildError::Call`] with
    /// [`CallError::Closed`] when no shard is running.
    pub async fn start_child(&self, args: A) -> Result<Started<H>, ChildError> {
        let first = self.slots.next.fetch_add(1, Ordering::Relaxed);
        self.start_from(first, args).await
    }

    /// Starts a child on the shard `key` maps to (the same shard for the same
    /// key while the shard count stays; which shard is not specified).
    ///
    /// # Errors
    /// As [`ShardedDynamicRef::start_child`].
    pub async fn start_child_keyed(
        &self,
        key: impl Hash,
        args: A,
    ) -> Result<Started<H>, ChildError> {
        let first = self.slots.hasher.hash_one(key) as usize;
        self.start_from(first, args).await
    }

    async fn start_from(&self, first: usize, args: A) -> Result<Started<H>, ChildError> {
        let mut args = Some(args);
        for i in 0..self.slots.shards.len() {
            let Some(shard) = self.shard(first + i) else {
                continue;
            };
            let Some(these) = args.take() else {
                break;
            };
            // A shard that has just exited hands the arguments back, unused,
            // for the next one.
            match shard.try_start(these).await {
                Err((ChildError::Call(CallError::Closed | CallError::NoReply), Some(back))) => {
                    args = Some(back);
                }
                done => return done.map_err(|(e, _)| e),
            }
        }
        Err(ChildError::Call(CallError::Closed))
    }

    /// Stops the child with this pid, on whichever shard holds it.
    ///
    /// # Errors
    /// [`ChildError::NoSuchPid`] when no shard holds it.
    pub async fn terminate_child(&self, pid: Pid) -> Result<(), ChildError> {
        for shard in self.shards() {
            match shard.terminate_child(pid).await {
                Err(ChildError::NoSuchPid(_)) | Err(ChildError::Call(CallError::Closed)) => {
                    continue
                }
                done => return done,
            }
        }
        Err(ChildError::NoSuchPid(pid))
    }

    /// Child counts summed over the running shards.
    ///
    /// # Errors
    /// A [`CallError`] if a shard does not answer.
    pub async fn count_children(&self) -> Result<ChildCounts, CallError> {
        let mut total = ChildCounts::default();
        for shard in self.shards() {
            let n = shard.count_children().await?;
            total.specs += n.specs;
            total.active += n.active;
            total.supervisors += n.supervisors;
            total.workers += n.workers;
        }
        Ok(total)
    }
}
