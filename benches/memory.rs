//! The server-wide memory bound under clients that never read: starts
//! `arbor serve` as its own process, has 40 TCP clients each write 64
//! `echo` calls of 256 KiB (16 MiB each) and never read, and reads the
//! server's RSS from /proc: before, at its peak while they push, and 2 s,
//! 10 s and 30 s after they have gone. Once with the bound (`--max-buffered-bytes`,
//! 256 MiB here) and once without it (a bound past anything the clients
//! can hold), interleaved; `--runs N` (default 3) rounds, medians printed.
//!
//! `cargo bench --bench memory` (3 rounds); `-- --runs 1` for one.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

mod support;
use support::Served;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const CLIENTS: usize = 40;
const CALLS: usize = 64;
const CALL_BYTES: usize = 256 << 10;
const BOUND: usize = 256 << 20;
/// No bound: more than the clients can ever hold.
const UNBOUNDED: usize = 1 << 40;

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn requests() -> Vec<u8> {
    let text = "x".repeat(CALL_BYTES);
    let mut all = String::new();
    for id in 0..CALLS {
        all.push_str(&format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"message\":\"{text}\"}},\"_meta\":{{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{{}}}}}}}}\n"
        ));
    }
    all.into_bytes()
}

/// One run: what the server's RSS was, in KiB.
struct Run {
    before: u64,
    peak: u64,
    after_2s: u64,
    after_10s: u64,
    after_30s: u64,
    disconnected: usize,
}

fn run(bound: usize) -> Run {
    let served = Served::start(&["--max-buffered-bytes", &bound.to_string()]);
    let addr = served.endpoint("tcp://", "");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = served.rss_kib();
    let payload = std::sync::Arc::new(requests());
    let (peak, disconnected) = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let payload = payload.clone();
            let addr = addr.clone();
            clients.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(&addr).await.unwrap();
                // Written until the server stops taking it, never read.
                let wrote =
                    tokio::time::timeout(Duration::from_secs(20), stream.write_all(&payload)).await;
                (stream, matches!(wrote, Ok(Err(_))))
            }));
        }
        // The peak: sampled until it has not grown for 2 s (or 25 s).
        let started = Instant::now();
        let (mut peak, mut since) = (0, Instant::now());
        while started.elapsed() < Duration::from_secs(25)
            && since.elapsed() < Duration::from_secs(2)
        {
            let now = served.rss_kib();
            if now > peak + 1024 {
                peak = now;
                since = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut held = Vec::new();
        let mut disconnected = 0;
        for c in clients {
            if let Ok((stream, cut)) = c.await {
                disconnected += usize::from(cut);
                held.push(stream);
            }
        }
        drop(held);
        (peak, disconnected)
    });
    std::thread::sleep(Duration::from_secs(2));
    let after_2s = served.rss_kib();
    std::thread::sleep(Duration::from_secs(8));
    let after_10s = served.rss_kib();
    std::thread::sleep(Duration::from_secs(20));
    let after_30s = served.rss_kib();
    drop(runtime);
    drop(served);
    Run {
        before,
        peak,
        after_2s,
        after_10s,
        after_30s,
        disconnected,
    }
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    #[cfg(unix)]
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    println!(
        "arbor memory bench: {CLIENTS} TCP clients x {CALLS} echo calls of {} KiB, never reading; load {}",
        CALL_BYTES >> 10,
        load_average()
    );
    let mut results: Vec<(usize, Vec<Run>)> = vec![(BOUND, Vec::new()), (UNBOUNDED, Vec::new())];
    for _ in 0..runs {
        // Interleaved: bound, none, bound, none...
        for (bound, runs) in &mut results {
            runs.push(run(*bound));
        }
    }
    println!(
        "{:<22}{:>10}{:>12}{:>14}{:>14}{:>14}{:>14}",
        "bound", "before", "peak", "2 s after", "10 s after", "30 s after", "cut clients"
    );
    for (bound, runs) in &results {
        let name = if *bound == UNBOUNDED {
            "none".to_string()
        } else {
            format!("{} MiB", bound >> 20)
        };
        let mib = |f: fn(&Run) -> u64| median(runs.iter().map(f).collect()) / 1024;
        let cut = median(runs.iter().map(|r| r.disconnected as u64).collect());
        println!(
            "{name:<22}{:>7} MiB{:>8} MiB{:>10} MiB{:>10} MiB{:>10} MiB{:>14}",
            mib(|r| r.before),
            mib(|r| r.peak),
            mib(|r| r.after_2s),
            mib(|r| r.after_10s),
            mib(|r| r.after_30s),
            cut
        );
        println!(
            "JSON {{\"bench\":\"memory\",\"bound_bytes\":{bound},\"runs\":{},\"rss_before_kib\":{},\"rss_peak_kib\":{},\"rss_after_2s_kib\":{},\"rss_after_10s_kib\":{},\"rss_after_30s_kib\":{}}}",
            runs.len(),
            median(runs.iter().map(|r| r.before).collect()),
            median(runs.iter().map(|r| r.peak).collect()),
            median(runs.iter().map(|r| r.after_2s).collect()),
            median(runs.iter().map(|r| r.after_10s).collect()),
            median(runs.iter().map(|r| r.after_30s).collect()),
        );
    }
    println!("load after: {}", load_average());
}
