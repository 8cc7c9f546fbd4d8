//! Driving requests: C clients, each on its own connection, calling flat
//! out or at a rate, timing every answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arbor::mcp::client::Client;
use futures_util::StreamExt as _;
use serde::Serialize;

use super::conn::{Dialer, Kind};
use super::hold::COUNTER_URI;
use super::target::{Running, Usage};
use super::Progress;

/// A request the load generator sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Op {
    /// `tools/call` of `echo`.
    Call,
    /// `resources/read` of the counter.
    Read,
}

/// What one drive showed.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DriveReport {
    pub(crate) kind: Kind,
    pub(crate) clients: usize,
    /// Requests a second asked for; `None` flat out.
    pub(crate) rate: Option<f64>,
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) req_per_s: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    /// The server's user + system CPU over the drive, per answered request.
    pub(crate) server_cpu_us_per_req: f64,
    /// The load generator's, likewise (it shares the machine).
    pub(crate) client_cpu_us_per_req: f64,
}

/// The shape of one drive.
#[derive(Clone, Debug)]
pub(crate) struct Drive<'a> {
    pub(crate) kind: Kind,
    pub(crate) clients: usize,
    pub(crate) duration: Duration,
    pub(crate) rate: Option<f64>,
    pub(crate) mix: &'a [Op],
}

/// A worker's tally.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    failed: usize,
    first_error: Option<String>,
}

/// Runs `drive` against `server`; `None` when no client could connect.
pub(crate) async fn drive(
    dialer: &Dialer,
    server: &Running,
    drive: &Drive<'_>,
    progress: &Progress,
) -> anyhow::Result<Result<DriveReport, String>> {
    let connected = AtomicUsize::new(0);
    let dial = futures_util::stream::iter(0..drive.clients)
        .map(|i| {
            let connected = &connected;
            async move {
                let client = dialer.connect(drive.kind, i, false).await?;
                // One request first: connection setup is not what is timed.
                send(&client, drive.mix[i % drive.mix.len()]).await?;
                connected.fetch_add(1, Ordering::Relaxed);
                Ok::<_, String>(client)
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>();
    let clients = progress
        .while_running(dial, || {
            format!(
                "{} {} × {}: {} connected",
                progress.prefix(),
                drive.kind.label(),
                drive.clients,
                connected.load(Ordering::Relaxed)
            )
        })
        .await;
    let (clients, errors): (Vec<_>, Vec<_>) = clients.into_iter().partition(Result::is_ok);
    let clients: Vec<Client> = clients.into_iter().flatten().collect();
    if clients.is_empty() {
        let why = errors.into_iter().find_map(Result::err).unwrap_or_default();
        return Ok(Err(why));
    }
    let server_before = server.usage()?;
    let client_before = Usage::of(std::process::id())?;
    let started = Instant::now();
    let deadline = started + drive.duration;
    // Each worker's share of the rate, as a fixed schedule: a late answer
    // delays no later request, and latency counts from the scheduled time
    // (no coordinated omission).
    let period = drive
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(clients.len() as f64 / r));
    let workers = clients.len();
    let mut running = tokio::task::JoinSet::new();
    for (w, client) in clients.iter().cloned().enumerate() {
        let mix = drive.mix.to_vec();
        running.spawn(async move {
            let mut tally = Tally::default();
            let offset = w as f64 / workers as f64;
            let mut k = 0u32;
            loop {
                let scheduled = match period {
                    Some(p) => {
                        let at = started + p.mul_f64(f64::from(k) + offset);
                        tokio::time::sleep_until(at.into()).await;
                        at
                    }
                    None => Instant::now(),
                };
                if scheduled >= deadline {
                    break;
                }
                match send(&client, mix[(w + k as usize) % mix.len()]).await {
                    Ok(()) => {
                        let us = scheduled.elapsed().as_micros();
                        tally
                            .latencies_us
                            .push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    Err(e) => {
                        tally.failed += 1;
                        tally.first_error.get_or_insert(e);
                    }
                }
                k += 1;
            }
            tally
        });
    }
    let tallies = running.join_all().await;
    let elapsed = started.elapsed().as_secs_f64();
    let server_after = server.usage()?;
    let client_after = Usage::of(std::process::id())?;
    futures_util::stream::iter(clients)
        .for_each_concurrent(64, |c| async move { c.close().await })
        .await;
    let mut latencies: Vec<u32> = Vec::new();
    let (mut failed, mut first_error) = (0, None);
    for t in tallies {
        latencies.extend(t.latencies_us);
        failed += t.failed;
        first_error = first_error.or(t.first_error);
    }
    latencies.sort_unstable();
    let ok = latencies.len();
    let per_req = |before: Usage, after: Usage| {
        if ok == 0 {
            return 0.0;
        }
        after.cpu.saturating_sub(before.cpu).as_secs_f64() * 1e6 / ok as f64
    };
    Ok(Ok(DriveReport {
        kind: drive.kind,
        clients: drive.clients,
        rate: drive.rate,
        ok,
        failed,
        first_error,
        req_per_s: ok as f64 / elapsed,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        p999_us: percentile(&latencies, 0.999),
        server_cpu_us_per_req: per_req(server_before, server_after),
        client_cpu_us_per_req: per_req(client_before, client_after),
    }))
}

/// One request of kind `op`.
async fn send(client: &Client, op: Op) -> Result<(), String> {
    match op {
        Op::Call => {
            let result = client
                .call_tool("echo", serde_json::json!({ "message": "hello" }))
                .await
                .map_err(|e| e.to_string())?;
            if result.is_error {
                return Err(format!("echo answered an error: {:?}", result.content));
            }
        }
        Op::Read => {
            client
                .read_resource(COUNTER_URI)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The `q` quantile of sorted `values` (nearest rank), 0 when empty.
fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&values, 0.5), 500.0);
        assert_eq!(percentile(&values, 0.99), 990.0);
        assert_eq!(percentile(&values, 0.999), 999.0);
        assert_eq!(percentile(&[7], 0.999), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
