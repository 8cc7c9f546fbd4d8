//! Holding N connections of a kind: how fast they open, what each costs
//! the server, and how long one update takes to reach all of them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbor::mcp::client::{Client, Listen};
use arbor::mcp::model::ListenFilter;
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;

use super::conn::{Dialer, Kind};
use super::target::{Running, Usage};
use super::Progress;

/// The subscribable resource the fan-out updates (arbor's demo counter;
/// a peer serves the same URI).
pub(crate) const COUNTER_URI: &str = "arbor://demo/counter";
/// The tool that updates it.
pub(crate) const BUMP: &str = "bump";
/// How long the server is given to settle before its memory is read.
const SETTLE: Duration = Duration::from_millis(1500);
/// How long a fan-out may take before the stragglers count as lost.
const FANOUT_WITHIN: Duration = Duration::from_secs(30);
/// How long the server is given to close a finished hold's connections.
const RELEASE_WITHIN: Duration = Duration::from_secs(10);
/// Descriptors above the hold's start that count as released (pooled
/// client connections the server keeps until they idle out).
const RELEASE_SLACK: usize = 300;
/// The notification a subscriber waits for.
const UPDATED: &str = "notifications/resources/updated";

/// What holding connections of one kind showed.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct HoldReport {
    pub(crate) kind: Kind,
    pub(crate) wanted: usize,
    pub(crate) opened: usize,
    /// Dials and subscriptions that failed.
    pub(crate) failed: usize,
    /// The first failure, to say why.
    pub(crate) first_error: Option<String>,
    /// From the first dial to the last connection ready.
    pub(crate) open_seconds: f64,
    /// The server's CPU while they opened, per connection opened.
    pub(crate) open_server_cpu_us: Option<f64>,
    /// Server resident memory grown, per connection held idle (`None` for
    /// 2026-07-28, where nothing is held before a listen stream).
    pub(crate) idle_rss_bytes_per_connection: Option<f64>,
    /// Subscribing every connection to the counter (2026-07-28: opening
    /// its listen stream), when there was a fan-out.
    pub(crate) subscribe_seconds: Option<f64>,
    /// Server resident memory grown, per connection held subscribed.
    pub(crate) subscribed_rss_bytes_per_connection: Option<f64>,
    pub(crate) fanout: Option<FanoutReport>,
}

/// One update to every subscriber.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FanoutReport {
    pub(crate) subscribers: usize,
    pub(crate) received: usize,
    /// From the call that made the update to the last subscriber told.
    pub(crate) last_ms: f64,
    /// CPU the server spent meanwhile (its share of the fan-out's cost).
    pub(crate) server_cpu_ms: f64,
    /// CPU the load generator spent meanwhile (its clients reading).
    pub(crate) generator_cpu_ms: f64,
}

/// A held connection and what it listens with.
struct Held {
    client: Client,
    /// 2026-07-28: the listen stream the update arrives on.
    listen: Option<Listen>,
    subscribed: bool,
}

/// Opens `n` connections of `kind` to `server` (`parallel` dials at once),
/// measures them idle; when `fanout`, subscribes them all, measures again
/// and sends one update to them all; then closes them.
pub(crate) async fn hold(
    dialer: &Dialer,
    server: &Running,
    kind: Kind,
    n: usize,
    parallel: usize,
    fanout: bool,
    progress: &Progress,
) -> anyhow::Result<HoldReport> {
    let parallel = parallel.max(1);
    let before = server.usage()?;
    let descriptors_before = server.open_descriptors();
    let started = Instant::now();
    // One alone first: a server that cannot hold this kind at all says
    // why once, instead of n times.
    let first = dialer
        .connect(kind, 0, true)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", kind.held_label()))?;
    let dials = in_parallel(
        1..n,
        parallel,
        progress,
        &format!("{}: open", kind.held_label()),
        |i| dialer.connect(kind, i, true),
    )
    .await;
    let open_seconds = started.elapsed().as_secs_f64();
    let opened_usage = server.usage()?;
    let mut first_error = None;
    let mut failed = 0;
    let mut held: Vec<Held> = std::iter::once(Ok(first))
        .chain(dials)
        .filter_map(|r| match r {
            Ok(client) => Some(Held {
                client,
                listen: None,
                subscribed: false,
            }),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
                None
            }
        })
        .collect();
    let per_connection = |grown: f64, count: usize| (count > 0).then(|| grown / count as f64);
    tokio::time::sleep(SETTLE).await;
    let idle = server.usage()?;
    let mut report = HoldReport {
        kind,
        wanted: n,
        opened: held.len(),
        failed,
        first_error,
        open_seconds,
        open_server_cpu_us: (!held.is_empty()).then(|| {
            opened_usage.cpu.saturating_sub(before.cpu).as_secs_f64() * 1e6 / held.len() as f64
        }),
        idle_rss_bytes_per_connection: per_connection(
            idle.rss as f64 - before.rss as f64,
            held.len(),
        )
        .filter(|_| kind != Kind::Modern),
        subscribe_seconds: None,
        subscribed_rss_bytes_per_connection: None,
        fanout: None,
    };
    if fanout {
        let started = Instant::now();
        let subscriptions = in_parallel(
            held.drain(..),
            parallel,
            progress,
            &format!("{}: subscribe", kind.held_label()),
            |h| subscribe(h, kind),
        )
        .await;
        report.subscribe_seconds = Some(started.elapsed().as_secs_f64());
        for s in subscriptions {
            let (h, error) = s;
            if let Some(e) = error {
                report.failed += 1;
                report.first_error.get_or_insert(e);
            }
            held.push(h);
        }
        tokio::time::sleep(SETTLE).await;
        let subscribed = server.usage()?;
        report.subscribed_rss_bytes_per_connection = per_connection(
            subscribed.rss as f64 - before.rss as f64,
            held.iter().filter(|h| h.subscribed).count(),
        );
        if held.iter().any(|h| h.subscribed) {
            report.fanout = Some(fan_out(&mut held, server).await?);
        }
    }
    futures_util::stream::iter(held)
        .for_each_concurrent(parallel * 4, |h| async move {
            drop(h.listen);
            h.client.close().await;
        })
        .await;
    if let Some(before) = descriptors_before {
        released(server, before).await;
    }
    Ok(report)
}

/// Waits (within [`RELEASE_WITHIN`]) until the server has closed what the
/// hold opened: the next kind must not find the connection limit still
/// taken by connections the server has yet to see go.
async fn released(server: &Running, before: usize) {
    let deadline = Instant::now() + RELEASE_WITHIN;
    while Instant::now() < deadline {
        match server.open_descriptors() {
            Some(now) if now > before + RELEASE_SLACK => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => return,
        }
    }
}

/// Runs `f` on every item, `parallel` at once, with a progress line.
async fn in_parallel<I, T, F, Fut>(
    items: I,
    parallel: usize,
    progress: &Progress,
    what: &str,
    f: F,
) -> Vec<T>
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let done = AtomicUsize::new(0);
    let work = futures_util::stream::iter(items)
        .map(|item| {
            let done = &done;
            let step = f(item);
            async move {
                let out = step.await;
                done.fetch_add(1, Ordering::Relaxed);
                out
            }
        })
        .buffer_unordered(parallel)
        .collect::<Vec<T>>();
    progress
        .while_running(work, || {
            format!(
                "{} {what}: {} done",
                progress.prefix(),
                done.load(Ordering::Relaxed)
            )
        })
        .await
}

/// Subscribes `h` to the counter (2026-07-28: opens a listen stream for
/// it); a failure is given back beside the connection, still held.
async fn subscribe(mut h: Held, kind: Kind) -> (Held, Option<String>) {
    if kind == Kind::Modern {
        let filter = ListenFilter {
            resource_subscriptions: Some(vec![COUNTER_URI.to_string()]),
            ..ListenFilter::default()
        };
        let mut listen = match h.client.listen(filter).await {
            Ok(listen) => listen,
            Err(e) => return (h, Some(e.to_string())),
        };
        // The acknowledgement says the subscription is live.
        let ack = tokio::time::timeout(Duration::from_secs(30), listen.next()).await;
        h.listen = Some(listen);
        return match ack {
            Ok(Some(n)) if n.method == "notifications/subscriptions/acknowledged" => {
                h.subscribed = true;
                (h, None)
            }
            Ok(other) => (h, Some(format!("listen: no acknowledgement but {other:?}"))),
            Err(_) => (h, Some("listen: no acknowledgement within 30 s".into())),
        };
    }
    match h.client.subscribe(COUNTER_URI).await {
        Ok(()) => {
            h.subscribed = true;
            (h, None)
        }
        Err(e) => (h, Some(e.to_string())),
    }
}

/// Bumps the counter once and waits for every subscriber to be told.
async fn fan_out(held: &mut [Held], server: &Running) -> anyhow::Result<FanoutReport> {
    #[derive(Default)]
    struct Tally {
        received: AtomicUsize,
        last: Mutex<Option<Instant>>,
        all: Notify,
    }
    let tally = Arc::new(Tally::default());
    let subscribers = held.iter().filter(|h| h.subscribed).count();
    let mut waiters = tokio::task::JoinSet::new();
    for h in held.iter_mut().filter(|h| h.subscribed) {
        let tally = tally.clone();
        let arrived = move || {
            let now = Instant::now();
            let mut last = tally.last.lock();
            *last = Some(last.map_or(now, |l| l.max(now)));
            drop(last);
            if tally.received.fetch_add(1, Ordering::Relaxed) + 1 == subscribers {
                tally.all.notify_one();
            }
        };
        // Each waiter listens before the update is made. A listen stream
        // is handed back, not dropped: closing it is a POST of its own,
        // which would compete with the deliveries still under way.
        match h.listen.take() {
            Some(mut listen) => waiters.spawn(async move {
                while let Some(n) = listen.next().await {
                    if n.method == UPDATED {
                        arrived();
                        break;
                    }
                }
                Some(listen)
            }),
            None => {
                let mut notifications = h.client.notifications();
                waiters.spawn(async move {
                    while let Ok(n) = notifications.recv().await {
                        if n.method == UPDATED {
                            arrived();
                            break;
                        }
                    }
                    None
                })
            }
        };
    }
    let trigger = held.iter().find(|h| h.subscribed).map(|h| h.client.clone());
    let (server_before, generator_before) = (server.usage()?, Usage::of(std::process::id())?);
    let start = Instant::now();
    if let Some(trigger) = trigger {
        let _ = trigger.call_tool(BUMP, serde_json::json!({})).await;
    }
    let _ = tokio::time::timeout(
        FANOUT_WITHIN.saturating_sub(start.elapsed()),
        tally.all.notified(),
    )
    .await;
    waiters.abort_all();
    let mut listens = Vec::new();
    while let Some(done) = waiters.join_next().await {
        listens.extend(done.ok().flatten());
    }
    let last = *tally.last.lock();
    let (server_after, generator_after) = (server.usage()?, Usage::of(std::process::id())?);
    let cpu_ms = |a: Usage, b: Usage| b.cpu.saturating_sub(a.cpu).as_secs_f64() * 1e3;
    let report = Ok(FanoutReport {
        subscribers,
        received: tally.received.load(Ordering::Relaxed),
        last_ms: last.map_or(0.0, |l| (l - start).as_secs_f64() * 1e3),
        server_cpu_ms: cpu_ms(server_before, server_after),
        generator_cpu_ms: cpu_ms(generator_before, generator_after),
    });
    drop(listens);
    report
}
