//! Memory per idle connection: starts `arbor serve` as its own process,
//! opens N TCP connections to it, makes each one a live session with one
//! request, and reads the server's RSS from /proc before and after.
//!
//! `cargo bench --bench connections` (10 000 connections);
//! `cargo bench --bench connections -- --quick` (1 000, for CI).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

const DISCOVER: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}
"#;

async fn open(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(DISCOVER).await.unwrap();
    let (read, _) = stream.split();
    let mut line = String::new();
    tokio::io::BufReader::new(read)
        .read_line(&mut line)
        .await
        .unwrap();
    assert!(line.contains("\"result\""), "{line}");
    stream
}

fn main() {
    let quick =
        std::env::args().any(|a| a == "--quick") || !std::env::args().any(|a| a == "--bench");
    let n: usize = if quick { 1_000 } else { 10_000 };
    let mut server = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["serve", "--tcp", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("arbor serve starts");
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("tcp://").unwrap().to_string();
    let pid = server.id();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib(pid);
    let started = Instant::now();
    let streams = runtime.block_on(async {
        let mut streams = Vec::with_capacity(n);
        let mut batch = Vec::new();
        for _ in 0..n {
            let addr = addr.clone();
            batch.push(tokio::spawn(async move { open(&addr).await }));
            if batch.len() == 32 {
                for s in batch.drain(..) {
                    streams.push(s.await.unwrap());
                }
            }
        }
        for s in batch {
            streams.push(s.await.unwrap());
        }
        streams
    });
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!(
        "arbor connections bench ({})",
        if quick { "quick" } else { "full" }
    );
    println!("idle TCP sessions          {n}");
    println!(
        "established in             {:.1} ms ({:.0}/s)",
        took.as_secs_f64() * 1e3,
        n as f64 / took.as_secs_f64()
    );
    println!("server RSS before / after  {before} KiB / {after} KiB");
    println!(
        "RSS per idle connection    {per:.0} B (target <= 8192 B, transport buffers included)"
    );
    println!(
        "JSON {{\"bench\":\"connections\",\"transport\":\"tcp\",\"connections\":{n},\"establish_secs\":{:.4},\"rss_before_kib\":{before},\"rss_after_kib\":{after},\"rss_bytes_per_connection\":{per:.1}}}",
        took.as_secs_f64()
    );
    drop(streams);
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = server.wait();
}
