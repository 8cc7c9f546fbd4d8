//! The dashboard end to end in a real browser: `arbor serve` holding some
//! TCP sessions, its dashboard opened in headless Chromium (Debian's
//! `chromium`, driven by npm's `playwright-core`, tests/ts/dashboard.mjs):
//! the page shows the tree and the sessions; a session clicked on shows its
//! detail (linked to its shard), goes when killed from the page
//! and its shard counts the crash; a shard killed from the page is
//! restarted and its supervisor's restart count rises. The screenshot is
//! written to `<target>/dashboard.png`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{node_prefix, run_with_timeout, TS_DIR};

const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");
const CHROMIUM: &str = "/usr/bin/chromium";
const SESSIONS: usize = 6;

struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_dashboard_shows_the_tree_and_kills_from_the_page() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium (.ci/run does)"
    );
    let mut child = Command::new(ARBOR)
        .arg("serve")
        .envs(support::FREE_PORTS)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let served = Served(child);
    let (mut tcp, mut dashboard) = (String::new(), String::new());
    while dashboard.is_empty() {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "serve ended early");
        if let Some(addr) = line.strip_prefix("tcp://") {
            tcp = addr.trim().to_string();
        }
        if let Some(url) = line.strip_prefix("dashboard ") {
            dashboard = url.trim().to_string();
        }
    }
    // Sessions held open for the page to show: each says initialize.
    let mut held = Vec::new();
    for i in 0..SESSIONS {
        let mut stream = TcpStream::connect(&tcp).unwrap();
        writeln!(
            stream,
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"browser-test-{i}","version":"1"}}}}}}"#
        )
        .unwrap();
        let mut answer = String::new();
        BufReader::new(stream.try_clone().unwrap())
            .read_line(&mut answer)
            .unwrap();
        assert!(answer.contains("\"result\""), "{answer}");
        held.push(stream);
    }
    let prefix = node_prefix();
    let script = prefix.install_script(&Path::new(TS_DIR).join("dashboard.mjs"));
    let screenshot = support::target_dir().join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut node = prefix.node();
    node.arg(&script)
        .arg(&dashboard)
        .arg(&screenshot)
        .arg(SESSIONS.to_string());
    let run = run_with_timeout(node, Duration::from_secs(120), "the browser test").unwrap();
    let said = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{}", support::describe(&run));
    let seen: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    assert!(
        seen["tcpConnectionsShown"].as_u64().unwrap() >= SESSIONS as u64,
        "{seen}"
    );
    assert!(
        seen["sessionsInTree"].as_u64().unwrap() >= SESSIONS as u64,
        "{seen}"
    );
    assert!(
        seen["killedSession"]
            .as_str()
            .unwrap()
            .contains("/session-"),
        "{seen}"
    );
    assert!(
        seen["shardAfter"].as_str().unwrap().contains("crashes 1"),
        "{seen}"
    );
    assert!(
        seen["parentBefore"]
            .as_str()
            .unwrap()
            .contains("restarts 0"),
        "{seen}"
    );
    assert!(
        seen["parentAfter"].as_str().unwrap().contains("restarts 1"),
        "{seen}"
    );
    assert!(seen["log"].as_str().unwrap().contains("killed "), "{seen}");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    drop(held);
    drop(served);
}
