//! `arbor soak`: the chaos soak, a benchmark of the production safety
//! rules together. It starts `arbor serve` (every transport, the resource
//! guard and cascade detection on), holds sessions over TCP, WebSocket and
//! both HTTP eras (some subscribed to the counter), has callers bump the
//! counter with the keyed `bump` tool, each call with its own idempotency
//! key and retried with that key until answered, while the admin API's
//! chaos kills a percentage of the sessions (and of the connection
//! supervisors' shards) over the run. Then it checks what the callers were
//! told against the server:
//!
//! - lost: an answered call whose key, asked again, does not give back the
//!   same answer (the store forgot it, or it ran again);
//! - duplicates: runs of the tool beyond one per key (the counter moved
//!   more than the keys asked for);
//! - the processes, descriptors and memory after every client has gone,
//!   against before any came.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arbor::mcp::client::{Client, Listen, RequestOptions};
use arbor::mcp::idempotency::{KEY, REPLAYED};
use arbor::mcp::model::ListenFilter;
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};

use super::conn::{Dialer, Kind};
use super::hold::{BUMP, COUNTER_URI};
use super::target::{Running, TargetSpec};

/// The kinds sessions and callers are spread over, in turn.
const KINDS: [Kind; 4] = [Kind::Tcp, Kind::Ws, Kind::Http, Kind::Modern];
/// How long one caller keeps retrying a key before it counts as
/// unanswered.
const RETRY_FOR: Duration = Duration::from_secs(60);
/// Failures in a row after which a caller dials a fresh client.
const REDIAL_AFTER: u32 = 3;
/// Answered keys asked again after the storm, at most.
const RECHECK_AT_MOST: usize = 20_000;
/// The longest one chaos request runs (the admin API's limit is 10 min).
const CHAOS_SEGMENT: Duration = Duration::from_secs(300);
/// Processes above the baseline that still count as back to it (the
/// admin listener's own request, a session still closing).
const PROCESS_SLACK: usize = 16;
/// The admin token the soak's server is started with.
const TOKEN: &str = "arbor-soak-admin-token";

/// `arbor soak`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct SoakArgs {
    /// Sessions held, a quarter each over TCP, WebSocket, HTTP (handshake
    /// era, with its GET stream) and HTTP 2026-07-28 (a listen stream).
    #[arg(long, default_value_t = 10_000)]
    sessions: usize,
    /// Percent of the held sessions subscribed to the counter (every bump
    /// is a notification to each).
    #[arg(long, default_value_t = 5.0)]
    subscribed_percent: f64,
    /// Clients calling `bump`, each on a session of its own, spread over
    /// the same four kinds: the chaos kills them as it kills the held ones.
    #[arg(long, default_value_t = 256)]
    callers: usize,
    /// Calls a second, all callers together.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// How long the storm lasts.
    #[arg(long, default_value = "30m")]
    duration: humantime::Duration,
    /// Percent of the held sessions killed over the storm (at a steady
    /// rate, random workers of the connection supervisors), and of the
    /// session supervisors' shards (at least one).
    #[arg(long, default_value_t = 10.0)]
    kill_percent: f64,
    /// Where the random kills pick their workers.
    #[arg(long, default_value = "connections")]
    chaos_subtree: String,
    /// Loopback source addresses dialled from (127.0.0.1 …).
    #[arg(long, default_value_t = 16)]
    sources: u8,
    /// Also write the report as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Exit 1 unless nothing answered was lost or run twice, every call
    /// was answered, and processes came back to their baseline.
    #[arg(long)]
    strict: bool,
}

/// What the soak showed.
#[derive(Debug, Default, Serialize)]
pub(crate) struct SoakReport {
    command: String,
    load_before: String,
    load_after: String,
    sessions_wanted: usize,
    sessions_opened: usize,
    subscribed: usize,
    storm_seconds: f64,
    /// Processes the chaos API killed: random workers, then shards.
    killed_workers: usize,
    killed_shards: usize,
    calls_answered: usize,
    /// Answers that were a replay of an earlier attempt's result.
    answered_by_replay: usize,
    /// Keys never answered within the retry window.
    calls_unanswered: usize,
    /// Attempts that failed (and were retried).
    failed_attempts: usize,
    /// Answered keys asked again after the storm.
    rechecked: usize,
    /// Of those, not answered the same result: acknowledged and lost.
    lost: usize,
    /// Runs of the tool beyond one per key.
    duplicates: i64,
    /// Two keys answered the same counter value.
    shared_answers: usize,
    counter_moved: u64,
    p50_ms: f64,
    p99_ms: f64,
    /// From a key's first attempt to its answer, retries included.
    p99_with_retries_ms: f64,
    processes_before: usize,
    processes_peak: usize,
    processes_after: usize,
    fds_before: Option<usize>,
    fds_after: Option<usize>,
    rss_before: u64,
    rss_after: u64,
    cascade_trips: u64,
    /// What each transport still held after every client had gone.
    held_after: Vec<String>,
    first_error: Option<String>,
}

/// One answered key.
struct Answer {
    key: String,
    caller: usize,
    value: u64,
}

#[derive(Default)]
struct Tally {
    answers: Vec<Answer>,
    latencies_ms: Vec<f64>,
    with_retries_ms: Vec<f64>,
    replays: usize,
    unanswered: usize,
    failed_attempts: usize,
    first_error: Option<String>,
}

/// Runs the soak, prints the report; its exit code under `--strict`.
pub(crate) async fn run(args: SoakArgs) -> anyhow::Result<std::process::ExitCode> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    anyhow::ensure!(args.callers >= 1, "--callers: at least 1");
    anyhow::ensure!(args.rate > 0.0, "--rate: above 0");
    anyhow::ensure!(
        (0.0..=100.0).contains(&args.kill_percent),
        "--kill-percent: 0 to 100"
    );
    let duration = Duration::from(args.duration);
    let server = Running::start(&soak_server()?).await?;
    let admin = Admin::new(server.endpoints.admin.context("no admin port")?);
    let dialer = Arc::new(Dialer::new(server.endpoints, args.sources)?);
    let mut report = SoakReport {
        command,
        load_before: super::load_average(),
        sessions_wanted: args.sessions,
        ..SoakReport::default()
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    report.processes_before = admin.processes().await?;
    report.fds_before = server.open_descriptors();
    report.rss_before = server.usage()?.rss;
    let counter_before = read_counter(&dialer).await?;

    eprintln!("soak: opening {} sessions", args.sessions);
    let held = hold(&dialer, &args).await;
    report.sessions_opened = held.len();
    report.subscribed = held.iter().filter(|h| h.subscribed).count();
    report.processes_peak = admin.processes().await?;

    eprintln!(
        "soak: storm for {duration:?}: {} callers at {}/s, killing {}% of the sessions",
        args.callers, args.rate, args.kill_percent
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let end = started + duration;
    let chaos = tokio::spawn(storm(
        admin.clone(),
        args.chaos_subtree.clone(),
        args.sessions,
        args.kill_percent,
        duration,
    ));
    let interval = Duration::from_secs_f64(args.callers as f64 / args.rate);
    let callers: Vec<_> = (0..args.callers)
        .map(|i| tokio::spawn(caller(dialer.clone(), i, interval, end, tally.clone())))
        .collect();
    for c in callers {
        let _ = c.await;
    }
    report.storm_seconds = started.elapsed().as_secs_f64();
    let (workers, shards) = chaos.await.unwrap_or((0, 0));
    report.killed_workers = workers;
    report.killed_shards = shards;
    report.processes_peak = report.processes_peak.max(admin.processes().await?);

    let tally = std::mem::take(&mut *tally.lock());
    report.calls_answered = tally.answers.len();
    report.answered_by_replay = tally.replays;
    report.calls_unanswered = tally.unanswered;
    report.failed_attempts = tally.failed_attempts;
    report.first_error = tally.first_error.clone();
    report.p50_ms = percentile(&tally.latencies_ms, 0.50);
    report.p99_ms = percentile(&tally.latencies_ms, 0.99);
    report.p99_with_retries_ms = percentile(&tally.with_retries_ms, 0.99);
    let values: HashSet<u64> = tally.answers.iter().map(|a| a.value).collect();
    report.shared_answers = tally.answers.len() - values.len();

    eprintln!("soak: checking {} answered keys", tally.answers.len());
    let counter_after = read_counter(&dialer).await?;
    report.counter_moved = counter_after.saturating_sub(counter_before);
    let asked = (tally.answers.len() + tally.unanswered) as i64;
    report.duplicates = report.counter_moved as i64 - asked;
    let (rechecked, lost) = recheck(&dialer, &tally.answers).await;
    report.rechecked = rechecked;
    report.lost = lost;
    report.cascade_trips = admin.cascade_trips().await.unwrap_or(0);

    eprintln!("soak: closing every client");
    futures_util::stream::iter(held)
        .for_each_concurrent(256, |h| async move {
            drop(h.listen);
            h.client.close().await;
        })
        .await;
    // Its pooled HTTP connections are processes of the server too.
    drop(dialer);
    report.processes_after = settle(&admin, report.processes_before).await?;
    report.held_after = admin.held().await.unwrap_or_default();
    report.fds_after = server.open_descriptors();
    report.rss_after = server.usage()?.rss;
    report.load_after = super::load_average();
    server.stop().await;

    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let failures = report.failures();
    if args.strict && !failures.is_empty() {
        eprintln!("arbor soak: {}", failures.join("; "));
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// This `arbor serve` with its safeguards on (rate limits off: the callers
/// share a few addresses), a known admin token, and an idempotency store
/// that keeps every key of the run.
fn soak_server() -> anyhow::Result<TargetSpec> {
    let exe = std::env::current_exe().context("finding this program")?;
    let exe = exe.to_str().context("this program's path is not UTF-8")?;
    Ok(TargetSpec {
        name: "arbor".into(),
        command: format!(
            "env ARBOR_ADMIN__TOKEN={TOKEN} ARBOR_SERVER__IDEMPOTENCY__TTL=24h \
             ARBOR_SERVER__IDEMPOTENCY__MAX_KEYS=10000000 \
             ARBOR_SERVER__IDEMPOTENCY__MAX_ENTRIES=10000000 \
             '{}' serve --http 127.0.0.1:{{http}} --ws 127.0.0.1:{{ws}} \
             --tcp 127.0.0.1:{{tcp}} --admin 127.0.0.1:{{admin}} --max-sessions 100000 \
             --no-rate-limits",
            exe.replace('\'', r"'\''")
        ),
    })
}

/// Opens the held sessions, a share of them subscribed; each with its
/// listen stream (2026-07-28) when it has one.
/// A held session.
struct Held {
    client: Client,
    /// Its listen stream (2026-07-28), when it subscribed.
    listen: Option<Listen>,
    subscribed: bool,
}

async fn hold(dialer: &Arc<Dialer>, args: &SoakArgs) -> Vec<Held> {
    let every = if args.subscribed_percent > 0.0 {
        (100.0 / args.subscribed_percent).round().max(1.0) as usize
    } else {
        usize::MAX
    };
    futures_util::stream::iter(0..args.sessions)
        .map(|i| {
            let dialer = dialer.clone();
            async move {
                let kind = KINDS[i % KINDS.len()];
                let client = dialer.connect(kind, i, true).await.ok()?;
                let mut held = Held {
                    client,
                    listen: None,
                    subscribed: false,
                };
                if !(i / KINDS.len()).is_multiple_of(every) {
                    return Some(held);
                }
                if kind == Kind::Modern {
                    let filter = ListenFilter {
                        resource_subscriptions: Some(vec![COUNTER_URI.to_string()]),
                        ..ListenFilter::default()
                    };
                    held.listen = held.client.listen(filter).await.ok();
                    held.subscribed = held.listen.is_some();
                } else {
                    held.subscribed = held.client.subscribe(COUNTER_URI).await.is_ok();
                }
                Some(held)
            }
        })
        .buffer_unordered(256)
        .filter_map(|held| async move { held })
        .collect()
        .await
}

/// The chaos: random workers of `subtree` at a steady rate in
/// segments, and one shard of a session supervisor at each third; what it
/// killed (workers, shards).
async fn storm(
    admin: Admin,
    subtree: String,
    sessions: usize,
    percent: f64,
    duration: Duration,
) -> (usize, usize) {
    let kills = sessions as f64 * percent / 100.0;
    let mut workers = 0;
    let mut shards = 0;
    let shard_kills = if percent > 0.0 { 2 } else { 0 };
    let shard_trees = ["connections/tcp-connections", "connections/ws-connections"];
    let started = Instant::now();
    let rate = kills / duration.as_secs_f64().max(1.0);
    let mut next_shard = 1;
    while started.elapsed() < duration {
        let left = duration.saturating_sub(started.elapsed());
        let third = duration / 3 * next_shard;
        let segment = left.min(CHAOS_SEGMENT).min(
            third
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1)),
        );
        if rate > 0.0 {
            let body = json!({"subtree": subtree, "rate": rate,
                "for_ms": segment.as_millis() as u64, "target": "workers"});
            match admin.post("/api/chaos", body).await {
                Ok(answer) => workers += answer["killed"].as_array().map_or(0, Vec::len),
                Err(e) => {
                    eprintln!("soak: chaos: {e}");
                    tokio::time::sleep(segment).await;
                }
            }
        } else {
            tokio::time::sleep(segment).await;
        }
        if next_shard <= shard_kills && started.elapsed() >= third {
            let subtree = shard_trees[(next_shard as usize - 1) % shard_trees.len()];
            let body = json!({"subtree": subtree, "count": 1, "target": "supervisors"});
            if let Ok(answer) = admin.post("/api/chaos", body).await {
                shards += answer["killed"].as_array().map_or(0, Vec::len);
            }
            next_shard += 1;
        }
    }
    (workers, shards)
}

/// One caller: a bump with a fresh key every `interval` until `end`, each
/// retried with its key until answered.
async fn caller(
    dialer: Arc<Dialer>,
    i: usize,
    interval: Duration,
    end: Instant,
    tally: Arc<Mutex<Tally>>,
) {
    let kind = KINDS[i % KINDS.len()];
    let mut client = dialer.connect(kind, i, false).await.ok();
    let mut next = tokio::time::Instant::now();
    let mut seq = 0u64;
    while Instant::now() < end {
        next += interval;
        seq += 1;
        let key = format!("soak-{i}-{seq}");
        let first = Instant::now();
        let mut failures_in_a_row = 0;
        let answered = loop {
            if first.elapsed() > RETRY_FOR {
                break None;
            }
            let Some(c) = client.as_ref() else {
                client = dialer.connect(kind, i, false).await.ok();
                if client.is_none() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            };
            let attempt = Instant::now();
            match bump(c, &key, Some(Duration::from_secs(10))).await {
                Ok((value, replay)) => break value.map(|v| (v, attempt.elapsed(), replay)),
                Err(e) => {
                    failures_in_a_row += 1;
                    {
                        let mut t = tally.lock();
                        t.failed_attempts += 1;
                        t.first_error
                            .get_or_insert_with(|| format!("{kind:?}: {e}"));
                    }
                    if failures_in_a_row >= REDIAL_AFTER {
                        if let Some(old) = client.take() {
                            old.close().await;
                        }
                        failures_in_a_row = 0;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        {
            let mut t = tally.lock();
            match answered {
                Some((value, latency, replay)) => {
                    t.answers.push(Answer {
                        key,
                        caller: i,
                        value,
                    });
                    t.latencies_ms.push(latency.as_secs_f64() * 1e3);
                    t.with_retries_ms.push(first.elapsed().as_secs_f64() * 1e3);
                    t.replays += usize::from(replay);
                }
                None => t.unanswered += 1,
            }
        }
        tokio::time::sleep_until(next).await;
    }
    if let Some(c) = client {
        c.close().await;
    }
}

/// Asks answered keys again (every one, or an even sample of at most
/// [`RECHECK_AT_MOST`]), each from its caller's address (keys are the
/// address's own): (asked, not answered the same replayed value).
async fn recheck(dialer: &Arc<Dialer>, answers: &[Answer]) -> (usize, usize) {
    let step = answers.len().div_ceil(RECHECK_AT_MOST).max(1);
    let sample: Vec<&Answer> = answers.iter().step_by(step).collect();
    let lost = futures_util::stream::iter(sample.iter().copied())
        .map(|a| {
            let dialer = dialer.clone();
            async move {
                // The caller's address, over TCP: the transport does not
                // matter, the principal does.
                let Ok(client) = dialer.connect(Kind::Tcp, a.caller, false).await else {
                    return true;
                };
                let same = matches!(
                    bump(&client, &a.key, None).await,
                    Ok((Some(value), true)) if value == a.value
                );
                client.close().await;
                !same
            }
        })
        .buffer_unordered(64)
        .filter(|lost| std::future::ready(*lost))
        .count()
        .await;
    (sample.len(), lost)
}

/// One keyed `bump`: the counter value it answered and whether it was a
/// replay.
async fn bump(
    client: &Client,
    key: &str,
    timeout: Option<Duration>,
) -> Result<(Option<u64>, bool), String> {
    let mut params = serde_json::Map::new();
    params.insert("name".into(), json!(BUMP));
    params.insert("arguments".into(), json!({}));
    params.insert("_meta".into(), json!({ KEY: key }));
    let options = RequestOptions {
        timeout,
        ..RequestOptions::default()
    };
    let result = client
        .request_with("tools/call", params, options)
        .await
        .map_err(|e| e.to_string())?;
    let value = result["content"][0]["text"]
        .as_str()
        .and_then(|t| t.trim().parse::<u64>().ok());
    Ok((value, result["_meta"][REPLAYED] == Value::Bool(true)))
}

/// The counter's value now, read over TCP.
async fn read_counter(dialer: &Arc<Dialer>) -> anyhow::Result<u64> {
    let client = dialer
        .connect(Kind::Tcp, 0, false)
        .await
        .map_err(|e| anyhow::anyhow!("reading the counter: {e}"))?;
    let read = client.read_resource(COUNTER_URI).await;
    client.close().await;
    let read = read.context("reading the counter")?;
    let text = serde_json::to_value(&read.contents)?;
    text[0]["text"]
        .as_str()
        .and_then(|t| t.trim().parse().ok())
        .context("the counter is not a number")
}

/// Waits (up to 30 s) for the server's processes to come back to
/// `baseline`; the count it ended at.
async fn settle(admin: &Admin, baseline: usize) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = admin.processes().await?;
        if now <= baseline || Instant::now() > deadline {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// The soak server's admin API.
#[derive(Clone, Debug)]
struct Admin {
    url: String,
    http: reqwest::Client,
}

impl Admin {
    fn new(addr: SocketAddr) -> Self {
        Admin {
            url: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let answer = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .error_for_status()?;
        Ok(answer.json().await?)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let answer = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    /// Live processes, lightweight and ractor.
    async fn processes(&self) -> anyhow::Result<usize> {
        let summary = self.get("/api/summary").await?;
        let count = |k: &str| summary[k].as_u64().unwrap_or(0) as usize;
        Ok(count("lightweight") + count("ractor"))
    }

    /// What each transport holds, as `transport what: n`, the non-zero.
    async fn held(&self) -> anyhow::Result<Vec<String>> {
        let summary = self.get("/api/summary").await?;
        Ok(summary["held"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["active"].as_u64().unwrap_or(0) > 0)
            .map(|h| format!("{} {}: {}", h["transport"], h["what"], h["active"]))
            .collect())
    }

    async fn cascade_trips(&self) -> anyhow::Result<u64> {
        let summary = self.get("/api/summary").await?;
        Ok(summary["cascades"]
            .as_array()
            .map_or(0, |c| c.iter().filter_map(|c| c["trips"].as_u64()).sum()))
    }
}

impl SoakReport {
    /// What `--strict` fails on.
    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.lost > 0 {
            failures.push(format!("{} answered calls lost", self.lost));
        }
        if self.duplicates != 0 || self.shared_answers > 0 {
            failures.push(format!(
                "{} duplicate runs, {} answers shared",
                self.duplicates, self.shared_answers
            ));
        }
        if self.calls_unanswered > 0 {
            failures.push(format!("{} calls never answered", self.calls_unanswered));
        }
        if self.calls_answered == 0 {
            failures.push("no call answered".into());
        }
        if self.processes_after > self.processes_before + PROCESS_SLACK {
            failures.push(format!(
                "{} processes after, {} before",
                self.processes_after, self.processes_before
            ));
        }
        failures
    }

    fn table(&self) -> String {
        let mib = |b: u64| b as f64 / 1_048_576.0;
        let fds = |f: Option<usize>| f.map_or("?".into(), |f| f.to_string());
        format!(
            "arbor soak: {storm:.0} s storm, load {lb} -> {la}\n\
             sessions held            {opened} of {wanted} ({subscribed} subscribed)\n\
             killed by chaos          {workers} workers, {shards} shards\n\
             calls answered           {answered} ({replays} by replay), {unanswered} unanswered, {failed} attempts failed\n\
             acknowledged and lost    {lost} of {rechecked} asked again\n\
             duplicate runs           {dups} (counter moved {moved}); answers shared {shared}\n\
             latency                  p50 {p50:.2} ms, p99 {p99:.2} ms, p99 with retries {p99r:.2} ms\n\
             processes                {pb} before, {pp} at peak, {pa} after\n\
             descriptors              {fb} before, {fa} after\n\
             resident memory          {rb:.1} MiB before, {ra:.1} MiB after\n\
             cascade trips            {trips}\n\
             held after               {held}\n",
            storm = self.storm_seconds,
            lb = self.load_before,
            la = self.load_after,
            opened = self.sessions_opened,
            wanted = self.sessions_wanted,
            subscribed = self.subscribed,
            workers = self.killed_workers,
            shards = self.killed_shards,
            answered = self.calls_answered,
            replays = self.answered_by_replay,
            unanswered = self.calls_unanswered,
            failed = self.failed_attempts,
            lost = self.lost,
            rechecked = self.rechecked,
            dups = self.duplicates,
            moved = self.counter_moved,
            shared = self.shared_answers,
            p50 = self.p50_ms,
            p99 = self.p99_ms,
            p99r = self.p99_with_retries_ms,
            pb = self.processes_before,
            pp = self.processes_peak,
            pa = self.processes_after,
            fb = fds(self.fds_before),
            fa = fds(self.fds_after),
            rb = mib(self.rss_before),
            ra = mib(self.rss_after),
            trips = self.cascade_trips,
            held = if self.held_after.is_empty() {
                "nothing".to_string()
            } else {
                self.held_after.join(", ")
            },
        )
    }
}
