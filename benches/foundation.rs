//! Foundation load benchmark for the arbor runtime and supervision layers.
//!
//! Not a criterion harness: criterion cannot measure resident memory per
//! actor. This binary generates load and measures it itself:
//!
//! 1. spawning idle actors: arbor lightweight, raw ractor, arbor-bridged
//!    ractor (time, RSS and live heap per actor);
//! 2. spawning supervised lightweight actors through a
//!    `ShardedDynamicSupervisor`, with concurrent `start_child` callers;
//! 3. restart latency of one permanent child under a one_for_one supervisor;
//! 4. registry lookups per second from two OS threads;
//! 5. actor-to-actor messages per second, arbor vs raw ractor.
//!
//! Every measurement runs in a fresh child process (this binary re-executed
//! with `--one KIND ...`), so RSS baselines are clean; each child prints one
//! `RESULT {json}` line that the parent collects. The parent prints a table,
//! then one line `JSON {...}` with every figure.
//!
//! ```text
//! cargo bench --bench foundation              # full run, 100K actors
//! cargo bench --bench foundation -- --quick   # smoke run, 10K actors
//! ```
//!
//! Run without cargo's `--bench` flag (as `cargo test --benches` does), the
//! binary runs the quick variant.

// The counting allocator below is the only unsafe code: it forwards to the
// system allocator and counts live bytes while a spawn measurement runs.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use arbor_runtime::{spawn, spawn_ractor, Actor, ActorRef, Context, Flow, ProcessRef};
use arbor_supervision::{
    ChildSpec, DynamicSupervisor, Restart, ShardedDynamicSupervisor, Shutdown, Strategy, Supervisor,
};
use ractor::ActorProcessingErr;
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

// ---------------------------------------------------------------------------
// Live-heap accounting
// ---------------------------------------------------------------------------

mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

    /// Counting is off unless a spawn measurement turns it on, so the
    /// throughput measurements pay one uncontended load per allocation.
    static ON: AtomicBool = AtomicBool::new(false);
    static BYTES: AtomicI64 = AtomicI64::new(0);
    static BLOCKS: AtomicI64 = AtomicI64::new(0);

    /// The system allocator, counting requested bytes and blocks.
    pub(crate) struct Counting;

    // SAFETY: every method forwards to `System` with the caller's arguments
    // unchanged; the counters have no effect on the memory returned.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded as is.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() && ON.load(Relaxed) {
                BYTES.fetch_add(layout.size() as i64, Relaxed);
                BLOCKS.fetch_add(1, Relaxed);
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded as is.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() && ON.load(Relaxed) {
                BYTES.fetch_add(layout.size() as i64, Relaxed);
                BLOCKS.fetch_add(1, Relaxed);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded as is.
            unsafe { System.dealloc(ptr, layout) };
            if ON.load(Relaxed) {
                BYTES.fetch_sub(layout.size() as i64, Relaxed);
                BLOCKS.fetch_sub(1, Relaxed);
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded as is.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() && ON.load(Relaxed) {
                BYTES.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
            }
            p
        }
    }

    /// Starts counting from zero.
    pub(crate) fn start() {
        BYTES.store(0, Relaxed);
        BLOCKS.store(0, Relaxed);
        ON.store(true, Relaxed);
    }

    /// Net bytes and blocks allocated since [`start`] (frees subtracted).
    pub(crate) fn net() -> (i64, i64) {
        (BYTES.load(Relaxed), BLOCKS.load(Relaxed))
    }
}

#[global_allocator]
static GLOBAL: heap::Counting = heap::Counting;

/// Resident set size of this process, in KiB, from `/proc/self/status`.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Actors under test
// ---------------------------------------------------------------------------

/// A lightweight actor that does nothing.
struct Idle;

impl Actor for Idle {
    type Msg = ();

    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> Flow {
        Ok(())
    }
}

/// A ractor actor that does nothing.
struct RawIdle;

impl ractor::Actor for RawIdle {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<()>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// A lightweight worker whose `init` reports when it ran and who it is.
struct Notifier {
    tx: UnboundedSender<(Instant, ProcessRef)>,
}

impl Actor for Notifier {
    type Msg = ();

    async fn init(&mut self, ctx: &mut Context<Self>) -> Flow {
        let _ = self.tx.send((Instant::now(), ctx.process()));
        Ok(())
    }

    async fn handle(&mut self, _msg: (), _ctx: &mut Context<Self>) -> Flow {
        Ok(())
    }
}

/// Counts messages; signals `done` when `want` have arrived.
struct Counter {
    got: u64,
    want: u64,
    done: UnboundedSender<()>,
}

impl Actor for Counter {
    type Msg = u64;

    async fn handle(&mut self, msg: u64, _ctx: &mut Context<Self>) -> Flow {
        std::hint::black_box(msg);
        self.got += 1;
        if self.got == self.want {
            let _ = self.done.send(());
        }
        Ok(())
    }
}

/// On `count`, sends `count` messages to `to` as fast as backpressure allows.
struct Producer {
    to: ActorRef<u64>,
}

impl Actor for Producer {
    type Msg = u64;

    async fn handle(&mut self, count: u64, _ctx: &mut Context<Self>) -> Flow {
        for i in 0..count {
            self.to.send(i).await?;
        }
        Ok(())
    }
}

enum Ball {
    Peer(ActorRef<Ball>),
    Hit(u64),
}

/// One side of a ping-pong: returns every hit to its peer until `limit`.
struct Player {
    peer: Option<ActorRef<Ball>>,
    limit: u64,
    done: UnboundedSender<()>,
}

impl Actor for Player {
    type Msg = Ball;

    async fn handle(&mut self, msg: Ball, _ctx: &mut Context<Self>) -> Flow {
        match msg {
            Ball::Peer(p) => self.peer = Some(p),
            Ball::Hit(n) if n >= self.limit => {
                let _ = self.done.send(());
            }
            Ball::Hit(n) => {
                if let Some(peer) = &self.peer {
                    peer.try_send(Ball::Hit(n + 1))?;
                }
            }
        }
        Ok(())
    }
}

struct RawCounter;

struct RawCounterState {
    got: u64,
    want: u64,
    done: UnboundedSender<()>,
}

impl ractor::Actor for RawCounter {
    type Msg = u64;
    type State = RawCounterState;
    type Arguments = (u64, UnboundedSender<()>);

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<u64>,
        (want, done): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(RawCounterState { got: 0, want, done })
    }

    async fn handle(
        &self,
        _myself: ractor::ActorRef<u64>,
        msg: u64,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        std::hint::black_box(msg);
        state.got += 1;
        if state.got == state.want {
            let _ = state.done.send(());
        }
        Ok(())
    }
}

struct RawProducer;

impl ractor::Actor for RawProducer {
    type Msg = u64;
    type State = ractor::ActorRef<u64>;
    type Arguments = ractor::ActorRef<u64>;

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<u64>,
        to: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(to)
    }

    async fn handle(
        &self,
        _myself: ractor::ActorRef<u64>,
        count: u64,
        to: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        for i in 0..count {
            to.send_message(i)?;
        }
        Ok(())
    }
}

enum RawBall {
    Peer(ractor::ActorRef<RawBall>),
    Hit(u64),
}

struct RawPlayer;

struct RawPlayerState {
    peer: Option<ractor::ActorRef<RawBall>>,
    limit: u64,
    done: UnboundedSender<()>,
}

impl ractor::Actor for RawPlayer {
    type Msg = RawBall;
    type State = RawPlayerState;
    type Arguments = (u64, UnboundedSender<()>);

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<RawBall>,
        (limit, done): Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(RawPlayerState {
            peer: None,
            limit,
            done,
        })
    }

    async fn handle(
        &self,
        _myself: ractor::ActorRef<RawBall>,
        msg: RawBall,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RawBall::Peer(p) => state.peer = Some(p),
            RawBall::Hit(n) if n >= state.limit => {
                let _ = state.done.send(());
            }
            RawBall::Hit(n) => {
                if let Some(peer) = &state.peer {
                    peer.send_message(RawBall::Hit(n + 1))?;
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Child measurements: each runs in its own process and returns JSON
// ---------------------------------------------------------------------------

/// The measurement's runtime, never dropped: the child process exits with
/// its actors still running, so no teardown cost lands in a measurement
/// (or in the bench's wall time).
fn runtime() -> &'static tokio::runtime::Runtime {
    Box::leak(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime"),
    ))
}

/// Runs `fut` as a task on a worker thread (not on the `block_on` thread, so
/// that the tasks it spawns go to a worker's local queue).
fn on_worker<F>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(async move { tokio::spawn(fut).await.expect("measurement task panicked") })
}

/// What the spawn measurements record once the actors exist.
fn memory_after(n: usize, base_kib: u64, elapsed: Duration, alive: usize, tasks: usize) -> Value {
    let rss = rss_kib();
    let (heap_bytes, heap_blocks) = heap::net();
    let nf = n as f64;
    json!({
        "n": n,
        "secs": elapsed.as_secs_f64(),
        "per_sec": nf / elapsed.as_secs_f64(),
        "rss_base_kib": base_kib,
        "rss_after_kib": rss,
        "rss_bytes_per_actor": (rss.saturating_sub(base_kib) * 1024) as f64 / nf,
        "heap_bytes_per_actor": heap_bytes as f64 / nf,
        "heap_blocks_per_actor": heap_blocks as f64 / nf,
        "alive": alive,
        "tokio_tasks": tasks,
    })
}

/// Lets every new actor task get its first poll before memory is read:
/// 20 ms plus 1 ms per thousand tasks.
async fn settle(tasks: usize) {
    tokio::time::sleep(Duration::from_millis(20 + tasks as u64 / 1000)).await;
}

fn spawn_light(n: usize) -> Value {
    let rt = runtime();
    let handle = rt.handle().clone();
    on_worker(rt, async move {
        // Written once (None is all zeroes, so the pages are touched now):
        // the handles' own 8 bytes each are in the baseline.
        let mut refs: Vec<Option<ActorRef<()>>> = Vec::with_capacity(n);
        refs.resize_with(n, || None);
        settle(0).await;
        let base = rss_kib();
        heap::start();
        let t0 = Instant::now();
        for slot in refs.iter_mut() {
            *slot = Some(spawn(Idle).await.expect("spawn"));
        }
        let elapsed = t0.elapsed();
        settle(n).await;
        let alive = refs.iter().flatten().filter(|r| r.is_alive()).count();
        let tasks = handle.metrics().num_alive_tasks();
        memory_after(n, base, elapsed, alive, tasks)
    })
}

fn spawn_raw_ractor(n: usize) -> Value {
    let rt = runtime();
    let handle = rt.handle().clone();
    on_worker(rt, async move {
        type Slot = Option<(ractor::ActorRef<()>, tokio::task::JoinHandle<()>)>;
        let mut refs: Vec<Slot> = Vec::with_capacity(n);
        refs.resize_with(n, || None);
        settle(0).await;
        let base = rss_kib();
        heap::start();
        let t0 = Instant::now();
        for slot in refs.iter_mut() {
            *slot = Some(
                ractor::Actor::spawn(None, RawIdle, ())
                    .await
                    .expect("spawn"),
            );
        }
        let elapsed = t0.elapsed();
        settle(n).await;
        let alive = refs
            .iter()
            .flatten()
            .filter(|(r, _)| r.get_status() == ractor::ActorStatus::Running)
            .count();
        let tasks = handle.metrics().num_alive_tasks();
        memory_after(n, base, elapsed, alive, tasks)
    })
}

fn spawn_bridged(n: usize) -> Value {
    let rt = runtime();
    let handle = rt.handle().clone();
    on_worker(rt, async move {
        let mut refs: Vec<Option<arbor_runtime::RactorRef<()>>> = Vec::with_capacity(n);
        refs.resize_with(n, || None);
        settle(0).await;
        let base = rss_kib();
        heap::start();
        let t0 = Instant::now();
        for slot in refs.iter_mut() {
            *slot = Some(spawn_ractor(RawIdle, |_| ()).await.expect("spawn"));
        }
        let elapsed = t0.elapsed();
        settle(n).await;
        let alive = refs
            .iter()
            .flatten()
            .filter(|r| r.process().is_alive())
            .count();
        let tasks = handle.metrics().num_alive_tasks();
        memory_after(n, base, elapsed, alive, tasks)
    })
}

fn spawn_supervised(n: usize, shards: usize, callers: usize, shutdown: bool) -> Value {
    let rt = runtime();
    let handle = rt.handle().clone();
    on_worker(rt, async move {
        let template = DynamicSupervisor::new("idle", |(): ()| async { spawn(Idle).await })
            .restart(Restart::Permanent)
            .shutdown(Shutdown::BrutalKill);
        let sup = ShardedDynamicSupervisor::new(shards, template)
            .start()
            .await
            .expect("sharded supervisor");
        // Per-call latencies, written once before the baseline so that
        // their pages are not counted against the children.
        let per = n / callers;
        let mut logs: Vec<Vec<f32>> = (0..callers)
            .map(|c| vec![0.0; if c + 1 == callers { n - per * c } else { per }])
            .collect();
        settle(0).await;
        let base = rss_kib();
        heap::start();
        let t0 = Instant::now();
        let tasks: Vec<_> = logs
            .drain(..)
            .map(|mut log| {
                let sup = sup.clone();
                tokio::spawn(async move {
                    for slot in log.iter_mut() {
                        let t = Instant::now();
                        sup.start_child(()).await.expect("start_child");
                        *slot = t.elapsed().as_secs_f32() * 1e6;
                    }
                    log
                })
            })
            .collect();
        for t in tasks {
            logs.push(t.await.expect("caller task"));
        }
        let elapsed = t0.elapsed();
        settle(n).await;
        let counts = sup.count_children().await.expect("count_children");
        let tasks = handle.metrics().num_alive_tasks();
        let mut v = memory_after(n, base, elapsed, counts.active, tasks);
        v["shards"] = json!(shards);
        v["callers"] = json!(callers);
        // Does a start get slower as the supervisors fill up?
        let tenth = |last: bool| -> f64 {
            let picked = logs.iter().flat_map(|log| {
                let k = (log.len() / 10).max(1);
                let part = if last {
                    &log[log.len() - k..]
                } else {
                    &log[..k]
                };
                part.iter().map(|&us| f64::from(us))
            });
            median(picked.collect())
        };
        v["start_us_first_tenth"] = json!(tenth(false));
        v["start_us_last_tenth"] = json!(tenth(true));
        if shutdown {
            // Stops every child (brutal kill) and every shard, and waits.
            let t0 = Instant::now();
            let reason = sup.supervisor().expect("started").shutdown().await;
            v["shutdown_secs"] = json!(t0.elapsed().as_secs_f64());
            v["shutdown_reason"] = json!(reason.to_string());
        }
        v
    })
}

/// Sorted latencies in microseconds, summarised.
fn latency_summary(mut us: Vec<f64>) -> Value {
    us.sort_by(f64::total_cmp);
    let pick = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    json!({
        "samples": us.len(),
        "median_us": pick(0.5),
        "p90_us": pick(0.9),
        "p99_us": pick(0.99),
        "p999_us": pick(0.999),
        "max_us": pick(1.0),
        "mean_us": us.iter().sum::<f64>() / us.len() as f64,
    })
}

fn restart_latency(restarts: usize) -> Value {
    let rt = runtime();
    on_worker(rt, async move {
        let (tx, mut rx) = unbounded_channel::<(Instant, ProcessRef)>();
        let spec = ChildSpec::worker("worker", move || {
            let tx = tx.clone();
            async move { spawn(Notifier { tx }).await }
        })
        .shutdown(Shutdown::BrutalKill);
        let sup = Supervisor::new(Strategy::OneForOne)
            .intensity(1_000_000, Duration::from_secs(1))
            .child(spec)
            .start()
            .await
            .expect("supervisor");
        let (_, mut child) = rx.recv().await.expect("first child");
        let warmup = restarts / 10;
        let mut to_init = Vec::with_capacity(restarts);
        let mut to_seen = Vec::with_capacity(restarts);
        let mut replaced = 0;
        for i in 0..warmup + restarts {
            let t0 = Instant::now();
            child.kill();
            let (init_at, next) = rx.recv().await.expect("restarted child");
            let seen_at = Instant::now();
            // The old child is gone and the new one is another process.
            replaced += usize::from(!child.is_alive() && next.pid() != child.pid());
            if i >= warmup {
                to_init.push((init_at - t0).as_secs_f64() * 1e6);
                to_seen.push((seen_at - t0).as_secs_f64() * 1e6);
            }
            child = next;
        }
        let alive = sup.process().is_alive();
        json!({
            "restarts": restarts,
            "warmup": warmup,
            "supervisor_alive": alive,
            "replaced": replaced,
            "kill_to_init": latency_summary(to_init),
            "kill_to_observed": latency_summary(to_seen),
        })
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Looks up random names from `threads` OS threads for `run`; returns
/// lookups per second and how many found nothing.
fn lookup_rate(
    names: &[String],
    threads: usize,
    run: Duration,
    seed: u64,
    lookup: &(dyn Fn(&String) -> bool + Sync),
) -> (f64, u64) {
    let n = names.len();
    std::thread::scope(|s| {
        let t0 = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    // xorshift64*, seeded per thread and run.
                    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (seed * 64 + t as u64 + 1);
                    let (mut count, mut missed) = (0u64, 0u64);
                    let end = Instant::now() + run;
                    loop {
                        for _ in 0..1024 {
                            x ^= x >> 12;
                            x ^= x << 25;
                            x ^= x >> 27;
                            let i = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as usize % n;
                            missed += u64::from(!lookup(&names[i]));
                        }
                        count += 1024;
                        if Instant::now() >= end {
                            break;
                        }
                    }
                    (count, missed)
                })
            })
            .collect();
        let (mut total, mut missed) = (0, 0);
        for w in workers {
            let (c, m) = w.join().expect("lookup thread");
            total += c;
            missed += m;
        }
        (total as f64 / t0.elapsed().as_secs_f64(), missed)
    })
}

fn registry_lookups(n: usize, run: Duration, runs: usize) -> Value {
    let rt = runtime();
    let names: Vec<String> = (0..n).map(|i| format!("session-{i:08}")).collect();
    let registry = arbor_runtime::ShardedRegistry::<String>::new();
    let (actors, register_secs) = {
        let (names, registry) = (names.clone(), registry.clone());
        on_worker(rt, async move {
            let mut actors = Vec::with_capacity(n);
            for _ in 0..n {
                actors.push(spawn(Idle).await.expect("spawn"));
            }
            let t0 = Instant::now();
            for (name, actor) in names.into_iter().zip(&actors) {
                registry.register(name, &actor.process()).expect("register");
            }
            (actors, t0.elapsed().as_secs_f64())
        })
    };
    assert_eq!(registry.len(), n);
    // Reference: the same names in one immutable std HashMap, no locks, no
    // liveness check; the lookup still clones the ProcessRef.
    let plain: std::collections::HashMap<String, ProcessRef> = names
        .iter()
        .cloned()
        .zip(actors.iter().map(|a| a.process()))
        .collect();
    let threads = 2;
    let (mut rates, mut reference, mut misses) = (Vec::new(), Vec::new(), 0);
    for r in 0..runs as u64 {
        let (rate, missed) = lookup_rate(&names, threads, run, r, &|name| {
            registry.whereis(name).map(std::hint::black_box).is_some()
        });
        rates.push(rate);
        misses += missed;
        let (rate, missed) = lookup_rate(&names, threads, run, r, &|name| {
            plain.get(name).cloned().map(std::hint::black_box).is_some()
        });
        reference.push(rate);
        misses += missed;
    }
    drop(actors);
    json!({
        "names": n,
        "threads": threads,
        "shards": registry.shards(),
        "run_secs": run.as_secs_f64(),
        "register_per_sec": n as f64 / register_secs,
        "lookups_per_sec": median(rates.clone()),
        "runs": rates,
        "reference_hashmap_lookups_per_sec": median(reference.clone()),
        "reference_runs": reference,
        "misses": misses,
    })
}

/// Times `reps` runs of `one` (each returns the messages it moved) and
/// reports the median rate.
async fn rate<F, Fut>(reps: usize, mut one: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u64, Duration)>,
{
    let mut rates = Vec::with_capacity(reps);
    let mut messages = 0;
    for _ in 0..reps {
        let (m, d) = one().await;
        messages = m;
        rates.push(m as f64 / d.as_secs_f64());
    }
    json!({ "messages": messages, "per_sec": median(rates.clone()), "runs": rates })
}

async fn arbor_one_way(m: u64, producers: u64) -> (u64, Duration) {
    let (done, mut finished) = unbounded_channel();
    let want = m / producers * producers;
    let sink = spawn(Counter { got: 0, want, done }).await.unwrap();
    let mut ps = Vec::new();
    for _ in 0..producers {
        ps.push(spawn(Producer { to: sink.clone() }).await.unwrap());
    }
    let t0 = Instant::now();
    for p in &ps {
        p.try_send(m / producers).unwrap();
    }
    finished.recv().await.unwrap();
    let d = t0.elapsed();
    for p in &ps {
        p.process().kill();
    }
    sink.process().kill();
    (want, d)
}

async fn arbor_ping_pong(m: u64) -> (u64, Duration) {
    let (done, mut finished) = unbounded_channel();
    let a = spawn(Player {
        peer: None,
        limit: m,
        done: done.clone(),
    })
    .await
    .unwrap();
    let b = spawn(Player {
        peer: None,
        limit: m,
        done,
    })
    .await
    .unwrap();
    a.try_send(Ball::Peer(b.clone())).unwrap();
    b.try_send(Ball::Peer(a.clone())).unwrap();
    let t0 = Instant::now();
    a.try_send(Ball::Hit(0)).unwrap();
    finished.recv().await.unwrap();
    let d = t0.elapsed();
    a.process().kill();
    b.process().kill();
    (m, d)
}

async fn ractor_one_way(m: u64, producers: u64) -> (u64, Duration) {
    let (done, mut finished) = unbounded_channel();
    let want = m / producers * producers;
    let (sink, _) = ractor::Actor::spawn(None, RawCounter, (want, done))
        .await
        .unwrap();
    let mut ps = Vec::new();
    for _ in 0..producers {
        let (p, _) = ractor::Actor::spawn(None, RawProducer, sink.clone())
            .await
            .unwrap();
        ps.push(p);
    }
    let t0 = Instant::now();
    for p in &ps {
        p.send_message(m / producers).unwrap();
    }
    finished.recv().await.unwrap();
    let d = t0.elapsed();
    for p in &ps {
        p.kill();
    }
    sink.kill();
    (want, d)
}

async fn ractor_ping_pong(m: u64) -> (u64, Duration) {
    let (done, mut finished) = unbounded_channel();
    let (a, _) = ractor::Actor::spawn(None, RawPlayer, (m, done.clone()))
        .await
        .unwrap();
    let (b, _) = ractor::Actor::spawn(None, RawPlayer, (m, done))
        .await
        .unwrap();
    a.send_message(RawBall::Peer(b.clone())).unwrap();
    b.send_message(RawBall::Peer(a.clone())).unwrap();
    let t0 = Instant::now();
    a.send_message(RawBall::Hit(0)).unwrap();
    finished.recv().await.unwrap();
    let d = t0.elapsed();
    a.kill();
    b.kill();
    (m, d)
}

fn messages(system: &str, m: u64, reps: usize) -> Value {
    let rt = runtime();
    let arbor = system == "arbor";
    on_worker(rt, async move {
        let pp = m / 5;
        // One warm-up run of each shape, not reported.
        if arbor {
            arbor_one_way(m / 10, 1).await;
            arbor_ping_pong(pp / 10).await;
            json!({
                "one_way": rate(reps, || arbor_one_way(m, 1)).await,
                "ping_pong": rate(reps, || arbor_ping_pong(pp)).await,
                "four_to_one": rate(reps, || arbor_one_way(m, 4)).await,
            })
        } else {
            ractor_one_way(m / 10, 1).await;
            ractor_ping_pong(pp / 10).await;
            json!({
                "one_way": rate(reps, || ractor_one_way(m, 1)).await,
                "ping_pong": rate(reps, || ractor_ping_pong(pp)).await,
                "four_to_one": rate(reps, || ractor_one_way(m, 4)).await,
            })
        }
    })
}

/// `--one KIND ARGS...`: one measurement, printed as `RESULT {json}`.
fn child(args: &[String]) -> ! {
    let num = |i: usize| -> usize {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("--one {}: argument {i} must be a number", args[0]))
    };
    let result = match args[0].as_str() {
        "spawn-light" => spawn_light(num(1)),
        "spawn-ractor" => spawn_raw_ractor(num(1)),
        "spawn-bridged" => spawn_bridged(num(1)),
        "spawn-supervised" => spawn_supervised(
            num(1),
            num(2),
            num(3),
            args.get(4).is_some_and(|a| a == "shutdown"),
        ),
        "restart" => restart_latency(num(1)),
        "registry" => registry_lookups(num(1), Duration::from_millis(num(2) as u64), num(3)),
        "messages" => messages(&args[1], num(2) as u64, num(3)),
        other => panic!("unknown measurement {other:?}"),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "RESULT {result}").expect("stdout");
    out.flush().expect("stdout");
    // Skip tearing down 100K actors and the runtime: the process is done.
    std::process::exit(0);
}

// ---------------------------------------------------------------------------
// Parent: run the children, print the table and the JSON line
// ---------------------------------------------------------------------------

fn run_child(args: &[String]) -> Value {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .arg("--one")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run measurement child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("child {args:?} failed ({}): {stdout}", out.status));
    serde_json::from_str(line).expect("child JSON")
}

/// Runs a child `reps` times and keeps, field by field, the median of the
/// numeric top-level fields.
fn run_median(args: &[String], reps: usize) -> Value {
    let runs: Vec<Value> = (0..reps).map(|_| run_child(args)).collect();
    let mut out = runs[0].clone();
    if let Some(obj) = out.as_object_mut() {
        for (key, value) in obj.iter_mut() {
            if value.is_f64() {
                *value = json!(median(
                    runs.iter().filter_map(|r| r[key].as_f64()).collect()
                ));
            }
        }
        obj.insert("reps".into(), json!(reps));
    }
    out
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M/s", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} K/s", x / 1e3)
    } else {
        format!("{x:.0} /s")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        child(&args[i + 1..]);
    }
    // cargo bench passes --bench; without it (cargo test) run the smoke size.
    let quick = args.iter().any(|a| a == "--quick") || !args.iter().any(|a| a == "--bench");
    let s = |x: usize| x.to_string();
    let started = Instant::now();

    let n = if quick { 10_000 } else { 100_000 };
    let spawn_reps = 3;
    let shards = 2;
    let many_shards = 64;
    let callers = 4;
    let restarts = if quick { 1_000 } else { 10_000 };
    let lookup_ms = if quick { 100 } else { 1_000 };
    let lookup_runs = 5;
    let msgs = if quick { 100_000 } else { 1_000_000 };
    let msg_reps = 5;

    eprintln!(
        "foundation bench ({}): {n} actors, 2 tokio workers, {} CPUs",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    eprintln!("  spawn: lightweight, raw ractor, bridged ({spawn_reps} processes each)...");
    let light = run_median(&["spawn-light".into(), s(n)], spawn_reps);
    let raw = run_median(&["spawn-ractor".into(), s(n)], spawn_reps);
    let bridged = run_median(&["spawn-bridged".into(), s(n)], spawn_reps);
    eprintln!("  spawn: supervised ({shards} shards, {callers} callers)...");
    let supervised = run_median(
        &["spawn-supervised".into(), s(n), s(shards), s(callers)],
        spawn_reps,
    );
    eprintln!("  spawn: supervised ({many_shards} shards, {callers} callers, then shutdown)...");
    let supervised_wide = run_median(
        &[
            "spawn-supervised".into(),
            s(n),
            s(many_shards),
            s(callers),
            "shutdown".into(),
        ],
        spawn_reps,
    );
    eprintln!("  restart latency ({restarts} restarts)...");
    let restart = run_child(&["restart".into(), s(restarts)]);
    eprintln!("  registry lookups ({lookup_runs} x {lookup_ms} ms)...");
    let registry = run_child(&["registry".into(), s(n), s(lookup_ms), s(lookup_runs)]);
    eprintln!("  messages ({msg_reps} runs per shape)...");
    let m_arbor = run_child(&["messages".into(), "arbor".into(), s(msgs), s(msg_reps)]);
    let m_ractor = run_child(&["messages".into(), "ractor".into(), s(msgs), s(msg_reps)]);

    // Sanity: every actor that was spawned is still running when measured.
    for (name, v) in [
        ("lightweight", &light),
        ("ractor", &raw),
        ("bridged", &bridged),
        ("supervised", &supervised),
        ("supervised (many shards)", &supervised_wide),
    ] {
        if v["alive"] != v["n"] {
            eprintln!("WARNING: {name}: {} of {} actors alive", v["alive"], v["n"]);
        }
    }
    if restart["replaced"] != json!(restarts + restarts / 10)
        || restart["supervisor_alive"] != json!(true)
    {
        eprintln!("WARNING: restart: {restart}");
    }

    let per = |v: &Value, k: &str| f(&v[k]);
    let ratio = |a: f64, b: f64| a / b;
    let restart_med = f(&restart["kill_to_init"]["median_us"]);
    let rate_of = |v: &Value, shape: &str| f(&v[shape]["per_sec"]);

    println!();
    println!(
        "arbor foundation bench ({}; medians of {spawn_reps} processes for spawns, {msg_reps} runs for rates)",
        if quick { "QUICK" } else { "full" }
    );
    println!();
    println!(
        "{:<34} {:>10} {:>12} {:>11} {:>11} {:>8}",
        "spawn (idle actors)", "n", "time", "RSS B/act", "heap B/act", "allocs"
    );
    for (name, v) in [
        ("arbor lightweight (spawn)", &light),
        ("raw ractor (Actor::spawn)", &raw),
        ("arbor bridged (spawn_ractor)", &bridged),
        ("supervised, 2 shards", &supervised),
        ("supervised, 64 shards", &supervised_wide),
    ] {
        println!(
            "{:<34} {:>10} {:>9.1} ms {:>11.0} {:>11.0} {:>8.2}",
            name,
            v["n"],
            per(v, "secs") * 1e3,
            per(v, "rss_bytes_per_actor"),
            per(v, "heap_bytes_per_actor"),
            per(v, "heap_blocks_per_actor"),
        );
    }
    println!(
        "  lightweight vs raw ractor: RSS x{:.2}, heap x{:.2}, spawn time x{:.2}",
        ratio(
            per(&light, "rss_bytes_per_actor"),
            per(&raw, "rss_bytes_per_actor")
        ),
        ratio(
            per(&light, "heap_bytes_per_actor"),
            per(&raw, "heap_bytes_per_actor")
        ),
        ratio(per(&light, "secs"), per(&raw, "secs")),
    );
    for v in [&supervised, &supervised_wide] {
        println!(
            "  supervised ({} shards, {} concurrent callers, {} children active): start_child median {:.1} us over the first tenth, {:.1} us over the last{}",
            v["shards"],
            v["callers"],
            v["alive"],
            per(v, "start_us_first_tenth"),
            per(v, "start_us_last_tenth"),
            v.get("shutdown_secs").map_or(String::new(), |d| format!(
                "; shutdown of the whole tree {:.1} ms",
                f(d) * 1e3
            )),
        );
    }
    println!();
    println!(
        "restart latency, one_for_one, {} restarts: kill -> new init median {:.1} us, p99 {:.1} us (max {:.0} us); kill -> observed median {:.1} us, p99 {:.1} us",
        restart["restarts"],
        restart_med,
        f(&restart["kill_to_init"]["p99_us"]),
        f(&restart["kill_to_init"]["max_us"]),
        f(&restart["kill_to_observed"]["median_us"]),
        f(&restart["kill_to_observed"]["p99_us"]),
    );
    println!(
        "registry: {} names, {} threads, {} shards: {} lookups (median of {}; plain HashMap reference {}), registration {}",
        registry["names"],
        registry["threads"],
        registry["shards"],
        fmt_rate(f(&registry["lookups_per_sec"])),
        lookup_runs,
        fmt_rate(f(&registry["reference_hashmap_lookups_per_sec"])),
        fmt_rate(f(&registry["register_per_sec"])),
    );
    println!();
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "messages", "arbor", "raw ractor", "ratio"
    );
    for (label, shape) in [
        ("one-way 1 -> 1 (send)", "one_way"),
        ("ping-pong (try_send)", "ping_pong"),
        ("one-way 4 -> 1 (send)", "four_to_one"),
    ] {
        let (a, r) = (rate_of(&m_arbor, shape), rate_of(&m_ractor, shape));
        println!(
            "{:<28} {:>14} {:>14} {:>7.2}x",
            label,
            fmt_rate(a),
            fmt_rate(r),
            a / r
        );
    }

    let targets = json!({
        "supervised_spawn_100k_under_0_5s": per(&supervised, "secs") * (100_000.0 / per(&supervised, "n")) < 0.5,
        "supervised_64_shards_spawn_100k_under_0_5s": per(&supervised_wide, "secs") * (100_000.0 / per(&supervised_wide, "n")) < 0.5,
        "lightweight_spawn_100k_under_0_5s": per(&light, "secs") * (100_000.0 / per(&light, "n")) < 0.5,
        "idle_lightweight_under_2kb": per(&light, "rss_bytes_per_actor") < 2048.0,
        "idle_supervised_under_2kb": per(&supervised, "rss_bytes_per_actor") < 2048.0,
        "restart_median_under_50us": restart_med < 50.0,
        "messages_at_least_1m_per_s": rate_of(&m_arbor, "one_way") >= 1e6,
    });
    println!();
    println!("targets (quick runs scale spawn times linearly to 100K):");
    for (k, v) in targets.as_object().into_iter().flatten() {
        println!("  {:<44} {}", k, verdict(v.as_bool() == Some(true)));
    }
    let total = started.elapsed().as_secs_f64();
    println!("total bench time {total:.1} s");

    let report = json!({
        "bench": "foundation",
        "quick": quick,
        "workers": 2,
        "spawn": {
            "lightweight": light,
            "ractor": raw,
            "bridged": bridged,
            "supervised": supervised,
            "supervised_many_shards": supervised_wide,
            "ratio_lightweight_vs_ractor": {
                "rss": ratio(per(&light, "rss_bytes_per_actor"), per(&raw, "rss_bytes_per_actor")),
                "heap": ratio(per(&light, "heap_bytes_per_actor"), per(&raw, "heap_bytes_per_actor")),
                "time": ratio(per(&light, "secs"), per(&raw, "secs")),
            },
        },
        "restart": restart,
        "registry": registry,
        "messages": {
            "arbor": m_arbor,
            "ractor": m_ractor,
            "ratio_arbor_vs_ractor": {
                "one_way": rate_of(&m_arbor, "one_way") / rate_of(&m_ractor, "one_way"),
                "ping_pong": rate_of(&m_arbor, "ping_pong") / rate_of(&m_ractor, "ping_pong"),
                "four_to_one": rate_of(&m_arbor, "four_to_one") / rate_of(&m_ractor, "four_to_one"),
            },
        },
        "targets": targets,
        "total_secs": total,
    });
    println!("JSON {report}");
}
