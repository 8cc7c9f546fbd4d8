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
use super::target::Running;
use super::Progress;

/// The subscribable resource the fan-out updates (arbor's demo counter;
/// a peer serves the same URI).
pub(crate) const COUNTER_URI: &str = "arbor://demo/counter";
/// The tool that updates it.
const BUMP: &str = "bump";
/// How long the server is given to settle before its memory is read.
const SETTLE: Duration = Duration::from_millis(1500);
/// How long a fan-out may take before the stragglers count as lost.
const FANOUT_WITHIN: Duration = Duration::from_secs(30);
/// The notification a subscriber waits for.
const UPDATED: &str = "notifications/resources/updated";

/// What holding connections of one kind showed.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct HoldReport {
    pub(crate) kind: Kind,
    pub(crate) wanted: usize,
    pub(crate) opened: usize,
    pub(crate) failed: usize,
    /// The first failure, to say why.
    pub(crate) first_error: Option<String>,
    /// From the first dial to the last connection ready (subscribed).
    pub(crate) open_seconds: f64,
    /// Server resident memory grown, per connection held.
    pub(crate) rss_bytes_per_connection: Option<f64>,
    pub(crate) fanout: Option<FanoutReport>,
}

/// One update to every subscriber.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FanoutReport {
    pub(crate) subscribers: usize,
    pub(crate) received: usize,
    /// From the call that made the update to the last subscriber told.
    pub(crate) last_ms: f64,
}

/// A held connection and what it listens with.
struct Held {
    client: Client,
    /// 2026-07-28: the listen stream the update arrives on.
    listen: Option<Listen>,
    subscribed: bool,
}

/// Opens `n` connections of `kind` to `server` (`parallel` dials at once),
/// measures, sends one update to them all when `fanout`, and closes them.
pub(crate) async fn hold(
    dialer: &Dialer,
    server: &Running,
    kind: Kind,
    n: usize,
    parallel: usize,
    fanout: bool,
    progress: &Progress,
) -> anyhow::Result<HoldReport> {
    let before = server.usage()?;
    let started = Instant::now();
    // One alone first: a server that cannot hold this kind at all says
    // why once, instead of n times.
    let first = match open(dialer, kind, 0, fanout).await {
        Ok(first) => first,
        Err(e) => anyhow::bail!("{}: {e}", kind.held_label()),
    };
    let opened = AtomicUsize::new(1);
    let failed = AtomicUsize::new(0);
    let rest = futures_util::stream::iter(1..n)
        .map(|i| {
            let (opened, failed) = (&opened, &failed);
            async move {
                let held = open(dialer, kind, i, fanout).await;
                match &held {
                    Ok(_) => opened.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
                held
            }
        })
        .buffer_unordered(parallel.max(1))
        .collect::<Vec<Result<Held, String>>>();
    let results = progress
        .while_running(rest, || {
            format!(
                "{} {}: {}/{n} open, {} failed",
                progress.prefix(),
                kind.held_label(),
                opened.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed)
            )
        })
        .await;
    let open_seconds = started.elapsed().as_secs_f64();
    let mut first_error = None;
    let mut held = Vec::with_capacity(n);
    held.push(first);
    for r in results {
        match r {
            Ok(h) => held.push(h),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    tokio::time::sleep(SETTLE).await;
    let after = server.usage()?;
    let rss_bytes_per_connection =
        (!held.is_empty()).then(|| (after.rss as f64 - before.rss as f64) / held.len() as f64);
    let fanout = if fanout && held.iter().any(|h| h.subscribed) {
        Some(fan_out(&mut held).await)
    } else {
        None
    };
    let report = HoldReport {
        kind,
        wanted: n,
        opened: held.len(),
        failed: failed.load(Ordering::Relaxed),
        first_error,
        open_seconds,
        rss_bytes_per_connection,
        fanout,
    };
    futures_util::stream::iter(held)
        .for_each_concurrent(parallel.max(1) * 4, |h| async move {
            drop(h.listen);
            h.client.close().await;
        })
        .await;
    Ok(report)
}

/// Connection `i`, subscribed to the counter when `subscribe`. A server
/// without the counter (a peer that lacks it) is held unsubscribed.
async fn open(dialer: &Dialer, kind: Kind, i: usize, subscribe: bool) -> Result<Held, String> {
    let client = dialer.connect(kind, i, true).await?;
    if !subscribe {
        return Ok(Held {
            client,
            listen: None,
            subscribed: false,
        });
    }
    if kind == Kind::Modern {
        let filter = ListenFilter {
            resource_subscriptions: Some(vec![COUNTER_URI.to_string()]),
            ..ListenFilter::default()
        };
        let mut listen = client.listen(filter).await.map_err(|e| e.to_string())?;
        // The acknowledgement says the subscription is live.
        let subscribed = tokio::time::timeout(Duration::from_secs(30), listen.next())
            .await
            .ok()
            .flatten()
            .is_some_and(|n| n.method == "notifications/subscriptions/acknowledged");
        return Ok(Held {
            client,
            listen: Some(listen),
            subscribed,
        });
    }
    let subscribed = client.subscribe(COUNTER_URI).await.is_ok();
    Ok(Held {
        client,
        listen: None,
        subscribed,
    })
}

/// Bumps the counter once and waits for every subscriber to be told.
async fn fan_out(held: &mut [Held]) -> FanoutReport {
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
        // Each waiter listens before the update is made.
        match h.listen.take() {
            Some(mut listen) => waiters.spawn(async move {
                while let Some(n) = listen.next().await {
                    if n.method == UPDATED {
                        return arrived();
                    }
                }
            }),
            None => {
                let mut notifications = h.client.notifications();
                waiters.spawn(async move {
                    while let Ok(n) = notifications.recv().await {
                        if n.method == UPDATED {
                            return arrived();
                        }
                    }
                })
            }
        };
    }
    let trigger = held.iter().find(|h| h.subscribed).map(|h| h.client.clone());
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
    let last = *tally.last.lock();
    FanoutReport {
        subscribers,
        received: tally.received.load(Ordering::Relaxed),
        last_ms: last.map_or(0.0, |l| (l - start).as_secs_f64() * 1e3),
    }
}
