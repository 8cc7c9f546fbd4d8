//! `arbor --otlp-endpoint URL serve` (built with `--features otel`): a
//! request's span reaches an OpenTelemetry collector over OTLP/HTTP, in
//! the trace its client named in `_meta.traceparent`, its parent the
//! client's span. The collector is a few lines here that keep what is
//! posted. `.ci/run` runs this with `cargo test --features otel --test
//! otel_export`.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Keeps the body of every POST, answers `200 {}`.
fn collector() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let posted = Arc::new(Mutex::new(Vec::new()));
    let keep = posted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut read = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if read.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    if read.read_exact(&mut body).is_err() {
                        return;
                    }
                    keep.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into_owned());
                    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, posted)
}

#[test]
fn a_request_span_reaches_the_collector_in_its_clients_trace() {
    let (url, posted) = collector();
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["--otlp-endpoint", &url, "serve"])
        .envs(support::FREE_PORTS)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut tcp = String::new();
    while !tcp.starts_with("tcp://") {
        tcp.clear();
        assert!(out.read_line(&mut tcp).unwrap() > 0, "serve ended early");
    }
    let mut stream = TcpStream::connect(tcp.trim().trim_start_matches("tcp://")).unwrap();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    for line in [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#.to_string(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_string(),
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"hi"}},"_meta":{{"traceparent":"00-{trace}-{parent}-01"}}}}}}"#),
    ] {
        writeln!(stream, "{line}").unwrap();
    }
    let mut answers = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..2 {
        let mut answer = String::new();
        answers.read_line(&mut answer).unwrap();
        assert!(answer.contains("\"result\""), "{answer}");
    }
    drop(stream);
    // A clean stop flushes the spans still batched.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let span = loop {
        let found = posted.lock().unwrap().iter().find_map(|body| {
            let export: Value = serde_json::from_str(body).ok()?;
            export["resourceSpans"]
                .as_array()?
                .iter()
                .flat_map(|r| r["scopeSpans"].as_array().into_iter().flatten())
                .flat_map(|s| s["spans"].as_array().into_iter().flatten())
                .find(|s| s["name"] == "mcp.request")
                .cloned()
        });
        if let Some(span) = found {
            break span;
        }
        assert!(
            Instant::now() < deadline,
            "no mcp.request span in {:?}",
            posted.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(span["traceId"], trace, "{span}");
    assert_eq!(span["parentSpanId"], parent, "{span}");
    let attributes = span["attributes"].to_string();
    assert!(attributes.contains("tools/call"), "{span}");
}
