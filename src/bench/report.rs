//! The run's findings: every round as JSON, medians side by side as a
//! Markdown table with the first server's advantage over each other.

use std::fmt::Write as _;

use serde::Serialize;

use super::conn::Kind;
use super::drive::DriveReport;
use super::hold::HoldReport;

/// One server in one round.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct RoundReport {
    /// Resident memory before any connection.
    pub(crate) idle_rss_bytes: u64,
    pub(crate) holds: Vec<HoldReport>,
    pub(crate) drives: Vec<DriveReport>,
    /// Kinds and drives the server could not serve at all, and why.
    pub(crate) not_served: Vec<String>,
}

/// Every round of one server.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ServerRounds {
    pub(crate) name: String,
    pub(crate) rounds: Vec<RoundReport>,
}

impl ServerRounds {
    pub(crate) fn new(name: &str) -> Self {
        ServerRounds {
            name: name.to_string(),
            rounds: Vec::new(),
        }
    }

    /// The median over rounds of what `f` reads, where it reads anything.
    fn median(&self, f: impl Fn(&RoundReport) -> Option<f64>) -> Option<f64> {
        let mut values: Vec<f64> = self.rounds.iter().filter_map(f).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        Some(if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        })
    }
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) command: String,
    pub(crate) machine: String,
    /// `/proc/loadavg` before the first round and after the last.
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) rounds: usize,
    /// Connections held of each kind.
    pub(crate) connections: usize,
    pub(crate) servers: Vec<ServerRounds>,
}

/// Which way a figure is better.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

/// One line of the table.
struct Row {
    label: String,
    better: Better,
    values: Vec<Option<f64>>,
    format: fn(f64) -> String,
}

/// A drive, as rows are keyed: kind, clients, and whether at a rate.
type DriveKey = (Kind, usize, bool);

fn drive_key(d: &DriveReport) -> DriveKey {
    (d.kind, d.clients, d.rate.is_some())
}

impl Report {
    /// What the first server failed, for `--strict`.
    pub(crate) fn failures_of_first(&self) -> Vec<String> {
        let Some(first) = self.servers.first() else {
            return Vec::new();
        };
        let mut failures = Vec::new();
        for (i, round) in first.rounds.iter().enumerate() {
            let round_no = i + 1;
            for why in &round.not_served {
                failures.push(format!("round {round_no}: {why}"));
            }
            for h in &round.holds {
                if h.failed > 0 {
                    failures.push(format!(
                        "round {round_no}: {} of {} {}s failed ({})",
                        h.failed,
                        h.wanted,
                        h.kind.held_label(),
                        h.first_error.as_deref().unwrap_or("")
                    ));
                }
                if let Some(f) = &h.fanout {
                    if f.received < f.subscribers {
                        failures.push(format!(
                            "round {round_no}: {} of {} {} subscribers were not told",
                            f.subscribers - f.received,
                            f.subscribers,
                            h.kind.held_label()
                        ));
                    }
                }
            }
            for d in &round.drives {
                if d.failed > 0 {
                    failures.push(format!(
                        "round {round_no}: {} × {}: {} requests failed ({})",
                        d.kind.label(),
                        d.clients,
                        d.failed,
                        d.first_error.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        failures
    }

    /// The medians side by side, as Markdown.
    pub(crate) fn table(&self) -> String {
        let rows = self.rows();
        let first = self.servers.first().map_or("", |s| s.name.as_str());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{}; load average {} before, {} after; medians of {} round(s); \
             {} connections held of each kind\n",
            self.machine, self.load_before, self.load_after, self.rounds, self.connections
        );
        let mut header = String::from("| |");
        let mut rule = String::from("|---|");
        for (i, s) in self.servers.iter().enumerate() {
            let _ = write!(header, " {} |", s.name);
            rule.push_str("---|");
            if i > 0 {
                let _ = write!(header, " {first} vs {} |", s.name);
                rule.push_str("---|");
            }
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for row in rows {
            let mut line = format!("| {} |", row.label);
            let mine = row.values.first().copied().flatten();
            for (i, v) in row.values.iter().enumerate() {
                let _ = write!(line, " {} |", v.map_or("n/a".into(), row.format));
                if i > 0 {
                    let ratio = match (mine, *v, row.better) {
                        (Some(a), Some(b), Better::Higher) if b > 0.0 => Some(a / b),
                        (Some(a), Some(b), Better::Lower) if a > 0.0 => Some(b / a),
                        _ => None,
                    };
                    let _ = write!(
                        line,
                        " {} |",
                        ratio.map_or(String::new(), |r| format!("{r:.1}×"))
                    );
                }
            }
            let _ = writeln!(out, "{line}");
        }
        for s in &self.servers {
            let mut notes: Vec<&String> = Vec::new();
            for why in s.rounds.iter().flat_map(|r| &r.not_served) {
                if !notes.contains(&why) {
                    notes.push(why);
                }
            }
            for why in notes {
                let _ = writeln!(out, "\n{}: not served: {why}", s.name);
            }
        }
        let _ = writeln!(
            out,
            "\n(ratios: how many times better the first server is; fan-out \
             and memory from the server's /proc, CPU is user + system time)"
        );
        out
    }

    fn rows(&self) -> Vec<Row> {
        let mut kinds: Vec<Kind> = Vec::new();
        let mut drives: Vec<DriveKey> = Vec::new();
        for round in self.servers.iter().flat_map(|s| &s.rounds) {
            for h in &round.holds {
                if !kinds.contains(&h.kind) {
                    kinds.push(h.kind);
                }
            }
            for d in &round.drives {
                if !drives.contains(&drive_key(d)) {
                    drives.push(drive_key(d));
                }
            }
        }
        let mut rows = Vec::new();
        let mut row = |label: String, better, format, f: &dyn Fn(&RoundReport) -> Option<f64>| {
            let values = self.servers.iter().map(|s| s.median(f)).collect();
            rows.push(Row {
                label,
                better,
                values,
                format,
            });
        };
        row("idle server, RSS (MB)".into(), Better::Lower, mb, &|r| {
            Some(r.idle_rss_bytes as f64)
        });
        for kind in kinds {
            let hold = |r: &RoundReport| r.holds.iter().find(|h| h.kind == kind).cloned();
            let name = kind.held_label();
            row(
                format!("{name}s: open all (s)"),
                Better::Lower,
                secs,
                &|r| hold(r).map(|h| h.open_seconds),
            );
            row(
                format!("{name}s: server CPU per connection opened (µs)"),
                Better::Lower,
                count,
                &|r| hold(r).and_then(|h| h.open_server_cpu_us),
            );
            row(
                format!("{name}: server RSS each, idle (KB)"),
                Better::Lower,
                kb,
                &|r| hold(r).and_then(|h| h.idle_rss_bytes_per_connection),
            );
            row(
                format!("{name}s: subscribe all (s)"),
                Better::Lower,
                secs,
                &|r| hold(r).and_then(|h| h.subscribe_seconds),
            );
            row(
                format!("{name}: server RSS each, subscribed (KB)"),
                Better::Lower,
                kb,
                &|r| hold(r).and_then(|h| h.subscribed_rss_bytes_per_connection),
            );
            row(
                format!("{name}s: one update, last one told (ms)"),
                Better::Lower,
                ms,
                &|r| hold(r).and_then(|h| h.fanout).map(|f| f.last_ms),
            );
            row(
                format!("{name}s: one update, server CPU (ms)"),
                Better::Lower,
                ms,
                &|r| hold(r).and_then(|h| h.fanout).map(|f| f.server_cpu_ms),
            );
        }
        for key in drives {
            let (kind, clients, rated) = key;
            let d = |r: &RoundReport| r.drives.iter().find(|d| drive_key(d) == key).cloned();
            let name = if rated {
                format!("{} × {clients}, at a rate", kind.label())
            } else {
                format!("{} × {clients}", kind.label())
            };
            // At a rate, what was done rather than the most it could do.
            let throughput = if rated { "req/s done" } else { "req/s" };
            row(
                format!("{name}: {throughput}"),
                Better::Higher,
                count,
                &|r| d(r).map(|d| d.req_per_s),
            );
            row(format!("{name}: p50 (ms)"), Better::Lower, micros, &|r| {
                d(r).map(|d| d.p50_us)
            });
            row(format!("{name}: p99 (ms)"), Better::Lower, micros, &|r| {
                d(r).map(|d| d.p99_us)
            });
            row(format!("{name}: p99.9 (ms)"), Better::Lower, micros, &|r| {
                d(r).map(|d| d.p999_us)
            });
            row(
                format!("{name}: server CPU per request (µs)"),
                Better::Lower,
                count,
                &|r| d(r).map(|d| d.server_cpu_us_per_req),
            );
        }
        rows
    }
}

fn mb(bytes: f64) -> String {
    format!("{:.1}", bytes / 1e6)
}

fn kb(bytes: f64) -> String {
    format!("{:.1}", bytes / 1e3)
}

fn secs(s: f64) -> String {
    format!("{s:.2}")
}

fn ms(ms: f64) -> String {
    format!("{ms:.0}")
}

fn micros(us: f64) -> String {
    format!("{:.2}", us / 1e3)
}

fn count(n: f64) -> String {
    let n = n.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.4), "999");
        assert_eq!(count(12_345.0), "12,345");
        assert_eq!(count(1_234_567.0), "1,234,567");
    }

    #[test]
    fn medians_take_the_middle_round() {
        let mut s = ServerRounds::new("x");
        for rss in [30, 10, 20] {
            s.rounds.push(RoundReport {
                idle_rss_bytes: rss,
                ..RoundReport::default()
            });
        }
        assert_eq!(s.median(|r| Some(r.idle_rss_bytes as f64)), Some(20.0));
        s.rounds.pop();
        assert_eq!(s.median(|r| Some(r.idle_rss_bytes as f64)), Some(20.0));
        assert_eq!(s.median(|_| None), None);
    }
}
