//! What the process benchmarks share: `arbor serve` as its own process, its
//! endpoints, and its RSS.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `arbor serve`, killed when dropped.
pub struct Served {
    pub child: Child,
    /// The endpoint lines it printed first (HTTP, SSE, WebSocket, TCP).
    pub urls: Vec<String>,
}

impl Served {
    /// Starts `arbor serve` with `args` and reads its four endpoint lines.
    /// `ARBOR_BIN` names another build of `arbor` to measure instead (an
    /// earlier commit's, to compare two in one run).
    pub fn start(args: &[&str]) -> Served {
        let bin =
            std::env::var_os("ARBOR_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_arbor").into());
        let mut child = Command::new(bin)
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("arbor serve starts");
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let urls = (0..4)
            .map(|_| {
                let mut line = String::new();
                out.read_line(&mut line).expect("an endpoint line");
                line.trim().to_string()
            })
            .collect();
        Served { child, urls }
    }

    /// The endpoint starting with `scheme` and ending with `suffix`, without
    /// its scheme.
    pub fn endpoint(&self, scheme: &str, suffix: &str) -> String {
        self.urls
            .iter()
            .find(|u| u.starts_with(scheme) && u.ends_with(suffix))
            .map(|u| u[scheme.len()..u.len() - suffix.len()].to_string())
            .expect("arbor serve printed that endpoint")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident set, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        let _ = self.child.wait();
    }
}
