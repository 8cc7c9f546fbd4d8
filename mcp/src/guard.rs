//! The resource guard: how close the process is to what it may hold (file
//! descriptors, resident memory, processes), and what the server gives up
//! as it gets close.
//!
//! | pressure | when | what changes |
//! |---|---|---|
//! | normal | every resource below `soft_percent` of its limit | nothing |
//! | soft | one at or past `soft_percent` (80) | new sessions and connections are refused (a 503, a close reason, a JSON-RPC line), the idlest sessions are closed a few at a time, notifications that would queue behind others are dropped, `/readyz` fails |
//! | hard | one at or past `hard_percent` (95) | as soft, and every new request is refused too (`-32031`, a 503) |
//!
//! A level is left once every resource is 5 points below it, so a server
//! hovering at the line does not flap. A transport tree samples the guard
//! every `interval` ([`ResourceGuard::sample`]); between samples each check
//! is one atomic load.
//!
//! The limits default to what the process is given: the descriptor limit
//! (`ulimit -n`), the cgroup's memory limit or the machine's memory, and
//! `max_processes` processes (Erlang's default is 262 144; arbor's are
//! smaller).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;

use crate::jsonrpc::{code, ErrorObject};

/// Points under a level's threshold that every resource must fall to
/// before the level is left.
const RECOVERY_MARGIN: u64 = 5;

/// The resource guard's settings (`[server.resource_guard]`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardConfig {
    /// Percent of a limit past which the server sheds load. Default: 80.
    pub soft_percent: u8,
    /// Percent of a limit past which it refuses all new work. Default: 95.
    pub hard_percent: u8,
    /// How often usage is read. Default: 1 s.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// File descriptors the process may hold. `None` (the default): its
    /// descriptor limit.
    pub max_fds: Option<u64>,
    /// Resident memory the process may hold, in bytes. `None` (the
    /// default): the cgroup's memory limit, or the machine's memory.
    pub max_memory_bytes: Option<u64>,
    /// Processes (actors) the process may hold. Default: 1 048 576.
    pub max_processes: u64,
    /// Percent of the sessions closed each interval under pressure, the
    /// idlest first (at least one). Zero closes none. Default: 1.
    pub idle_close_percent: u8,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            soft_percent: 80,
            hard_percent: 95,
            interval: Duration::from_secs(1),
            max_fds: None,
            max_memory_bytes: None,
            max_processes: 1 << 20,
            idle_close_percent: 1,
        }
    }
}

/// What the guard watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Open file descriptors (sockets among them).
    FileDescriptors,
    /// Resident memory, in bytes.
    Memory,
    /// Live processes.
    Processes,
}

impl Resource {
    /// Its name in metrics, errors and `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::FileDescriptors => "fds",
            Resource::Memory => "memory",
            Resource::Processes => "processes",
        }
    }
}

/// One resource's use against its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Which.
    pub resource: Resource,
    /// How much is held.
    pub used: u64,
    /// How much may be.
    pub limit: u64,
}

impl Usage {
    /// `used` as a percentage of `limit`, rounded down.
    pub fn percent(&self) -> u64 {
        (u128::from(self.used) * 100 / u128::from(self.limit.max(1))) as u64
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} of {} ({}%)",
            self.resource.as_str(),
            self.used,
            self.limit,
            self.percent()
        )
    }
}

/// How close the process is to its limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pressure {
    /// Below the soft threshold.
    #[default]
    Normal,
    /// Past the soft threshold for this resource: shedding load.
    Soft(Usage),
    /// Past the hard threshold for this resource: refusing new work.
    Hard(Usage),
}

impl Pressure {
    /// `normal`, `soft` or `hard`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Pressure::Normal => "normal",
            Pressure::Soft(_) => "soft",
            Pressure::Hard(_) => "hard",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Pressure::Normal => 0,
            Pressure::Soft(_) => 1,
            Pressure::Hard(_) => 2,
        }
    }
}

/// Work refused by the guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("server overloaded ({level} pressure): {usage}")]
pub struct Overloaded {
    /// `soft` or `hard`.
    pub level: &'static str,
    /// The resource past its threshold.
    pub usage: Usage,
    /// When to look again: the guard's next reading.
    pub retry_after: Duration,
}

impl Overloaded {
    /// The JSON-RPC error: [`code::OVERLOADED`] with `data` {`resource`, `used`,
    /// `limit`, `pressure`, `retryAfter`}.
    pub fn error(&self) -> ErrorObject {
        ErrorObject::new(code::OVERLOADED, self.to_string()).with_data(json!({
            "resource": self.usage.resource.as_str(),
            "used": self.usage.used,
            "limit": self.usage.limit,
            "pressure": self.level,
            "retryAfter": crate::rate::seconds_up(self.retry_after),
        }))
    }

    /// `retry_after` in whole seconds, at least 1, for `Retry-After`.
    pub fn retry_after_secs(&self) -> u64 {
        crate::rate::whole_seconds_up(self.retry_after)
    }
}

impl crate::server::or_off::Expected for GuardConfig {
    const EXPECTED: &'static str = "expected a table of the resource guard's settings \
        (soft_percent, hard_percent, interval, max_fds, max_memory_bytes, max_processes, \
        idle_close_percent), or false for none";
}

/// The guard of one server, or none (it then admits everything); cloning
/// gives another handle to it.
#[derive(Clone, Debug)]
pub struct ResourceGuard(Option<Arc<Guard>>);

#[derive(Debug)]
struct Guard {
    config: GuardConfig,
    /// [`Pressure::rank`] of `now`, read on every check without the lock.
    rank: AtomicU8,
    now: Mutex<Pressure>,
}

impl ResourceGuard {
    /// A guard with `config`, at normal pressure until its first sample;
    /// none for `None`.
    pub fn new(config: Option<GuardConfig>) -> Self {
        ResourceGuard(config.map(|config| {
            Arc::new(Guard {
                config,
                rank: AtomicU8::new(0),
                now: Mutex::new(Pressure::Normal),
            })
        }))
    }

    /// Its settings; `None` when there is no guard.
    pub fn config(&self) -> Option<&GuardConfig> {
        self.0.as_deref().map(|g| &g.config)
    }

    /// [`Pressure::rank`] at the last sample: one atomic load.
    fn rank(&self) -> u8 {
        self.0
            .as_deref()
            .map_or(0, |g| g.rank.load(Ordering::Acquire))
    }

    /// The pressure at the last sample.
    pub fn pressure(&self) -> Pressure {
        match self.0.as_deref() {
            Some(guard) if self.rank() > 0 => *guard.now.lock(),
            _ => Pressure::Normal,
        }
    }

    /// Whether a new session or connection may start: not under pressure.
    ///
    /// # Errors
    /// [`Overloaded`] at soft or hard pressure.
    pub fn admit_session(&self) -> Result<(), Overloaded> {
        match self.pressure() {
            Pressure::Normal => Ok(()),
            p @ (Pressure::Soft(usage) | Pressure::Hard(usage)) => {
                Err(self.refusal(p.as_str(), usage))
            }
        }
    }

    /// Whether a new request may run: not at hard pressure.
    ///
    /// # Errors
    /// [`Overloaded`] at hard pressure.
    pub fn admit_request(&self) -> Result<(), Overloaded> {
        if self.rank() < 2 {
            return Ok(());
        }
        match self.pressure() {
            Pressure::Hard(usage) => Err(self.refusal("hard", usage)),
            _ => Ok(()),
        }
    }

    /// Whether notifications that would wait behind others are dropped.
    pub fn sheds_notifications(&self) -> bool {
        self.rank() > 0
    }

    fn refusal(&self, level: &'static str, usage: Usage) -> Overloaded {
        crate::stats::overloaded();
        Overloaded {
            level,
            usage,
            retry_after: self.config().map_or(Duration::ZERO, |c| c.interval),
        }
    }

    /// Reads usage now and moves the pressure, which it returns.
    pub fn sample(&self) -> Pressure {
        let Some(guard) = self.0.as_deref() else {
            return Pressure::Normal;
        };
        guard.settle(&guard.usage())
    }

    /// How many of `sessions` to close at this pressure: the configured
    /// share (at least one) under pressure, none otherwise.
    pub fn to_close(&self, sessions: usize) -> usize {
        let percent = self
            .config()
            .map_or(0, |c| usize::from(c.idle_close_percent));
        if self.rank() == 0 || percent == 0 || sessions == 0 {
            return 0;
        }
        (sessions * percent).div_ceil(100).max(1)
    }
}

impl Default for ResourceGuard {
    fn default() -> Self {
        ResourceGuard::new(Some(GuardConfig::default()))
    }
}

impl Guard {
    /// Each resource's use now; one that cannot be read here is left out.
    fn usage(&self) -> Vec<Usage> {
        let config = &self.config;
        let mut usage = Vec::with_capacity(3);
        if let (Some(used), Some(limit)) =
            (open_descriptors(), config.max_fds.or_else(descriptor_limit))
        {
            usage.push(Usage {
                resource: Resource::FileDescriptors,
                used,
                limit,
            });
        }
        if let (Some(used), Some(limit)) = (
            resident_bytes(),
            config.max_memory_bytes.or_else(memory_limit),
        ) {
            usage.push(Usage {
                resource: Resource::Memory,
                used,
                limit,
            });
        }
        usage.push(Usage {
            resource: Resource::Processes,
            used: arbor_runtime::process_counts().total() as u64,
            limit: config.max_processes,
        });
        usage
    }

    /// The pressure `usage` puts the guard under, from where it stands.
    fn settle(&self, usage: &[Usage]) -> Pressure {
        let config = &self.config;
        let soft = u64::from(config.soft_percent);
        let hard = u64::from(config.hard_percent).max(soft);
        let worst = usage.iter().copied().max_by_key(Usage::percent);
        let was = *self.now.lock();
        let next = match worst {
            None => Pressure::Normal,
            Some(u) => {
                let percent = u.percent();
                // Staying at a level takes less than reaching it.
                let held = |threshold: u64, rank: u8| {
                    percent >= threshold
                        || (was.rank() >= rank && percent + RECOVERY_MARGIN > threshold)
                };
                if held(hard, 2) {
                    Pressure::Hard(u)
                } else if held(soft, 1) {
                    Pressure::Soft(u)
                } else {
                    Pressure::Normal
                }
            }
        };
        for u in usage {
            let resource = u.resource.as_str();
            metrics::gauge!("arbor_resource_used", "resource" => resource).set(u.used as f64);
            metrics::gauge!("arbor_resource_limit", "resource" => resource).set(u.limit as f64);
        }
        metrics::gauge!("arbor_resource_pressure").set(f64::from(next.rank()));
        if next.rank() != was.rank() {
            metrics::counter!("arbor_resource_pressure_changes_total", "to" => next.as_str())
                .increment(1);
            match next {
                Pressure::Normal => tracing::info!(
                    target: "arbor::mcp",
                    "resource pressure over: admitting new work again"
                ),
                Pressure::Soft(u) | Pressure::Hard(u) => tracing::warn!(
                    target: "arbor::mcp",
                    pressure = next.as_str(),
                    usage = %u,
                    "resource pressure: shedding load"
                ),
            }
        }
        *self.now.lock() = next;
        self.rank.store(next.rank(), Ordering::Release);
        crate::stats::pressure(next);
        next
    }
}

/// Descriptors open now: the entries of `/proc/self/fd`.
pub fn open_descriptors() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // Less the one read_dir itself holds open.
    Some((entries.count() as u64).saturating_sub(1))
}

/// The soft descriptor limit, from `/proc/self/limits`.
fn descriptor_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Resident memory now, from `/proc/self/status`.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What the process may hold in memory: the cgroup's limit where one is
/// set and lower than the machine's memory.
pub fn memory_limit() -> Option<u64> {
    let physical = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib.saturating_mul(1024));
    // "max" when unlimited, which does not parse.
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match (physical, cgroup) {
        (Some(p), Some(c)) => Some(p.min(c)),
        (p, c) => p.or(c),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn guard() -> ResourceGuard {
        ResourceGuard::default()
    }

    impl ResourceGuard {
        fn settle(&self, usage: &[Usage]) -> Pressure {
            self.0.as_deref().unwrap().settle(usage)
        }

        fn usage(&self) -> Vec<Usage> {
            self.0.as_deref().unwrap().usage()
        }
    }

    fn processes(used: u64) -> Vec<Usage> {
        vec![Usage {
            resource: Resource::Processes,
            used,
            limit: 100,
        }]
    }

    #[test]
    fn each_threshold_is_reached_and_left_with_a_margin() {
        let g = guard();
        assert_eq!(g.settle(&processes(79)), Pressure::Normal);
        assert!(g.admit_session().is_ok());
        assert!(matches!(g.settle(&processes(80)), Pressure::Soft(_)));
        let refused = g.admit_session().unwrap_err();
        assert_eq!(refused.level, "soft");
        assert!(g.admit_request().is_ok(), "soft refuses sessions only");
        assert!(g.sheds_notifications());
        // Within the margin: still soft.
        assert!(matches!(g.settle(&processes(76)), Pressure::Soft(_)));
        assert!(matches!(g.settle(&processes(95)), Pressure::Hard(_)));
        let refused = g.admit_request().unwrap_err();
        assert_eq!(refused.level, "hard");
        assert_eq!(refused.error().code, code::OVERLOADED);
        assert_eq!(refused.error().data.unwrap()["resource"], "processes");
        assert!(matches!(g.settle(&processes(91)), Pressure::Hard(_)));
        assert!(matches!(g.settle(&processes(90)), Pressure::Soft(_)));
        assert_eq!(g.settle(&processes(75)), Pressure::Normal);
        assert!(g.admit_session().is_ok() && g.admit_request().is_ok());
        assert!(!g.sheds_notifications());
    }

    #[test]
    fn the_worst_resource_decides() {
        let g = guard();
        let usage = [
            Usage {
                resource: Resource::Memory,
                used: 10,
                limit: 100,
            },
            Usage {
                resource: Resource::FileDescriptors,
                used: 850,
                limit: 1000,
            },
        ];
        match g.settle(&usage) {
            Pressure::Soft(u) => assert_eq!(u.resource, Resource::FileDescriptors),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_guard_admits_everything() {
        let g = ResourceGuard::new(None);
        assert_eq!(g.sample(), Pressure::Normal);
        assert!(g.admit_session().is_ok() && g.admit_request().is_ok());
        assert_eq!(g.to_close(100), 0);
    }

    #[test]
    fn sessions_are_closed_a_share_at_a_time_under_pressure() {
        let g = guard();
        assert_eq!(g.to_close(1000), 0, "none at normal pressure");
        g.settle(&processes(85));
        assert_eq!(g.to_close(1000), 10);
        assert_eq!(g.to_close(3), 1, "at least one");
        assert_eq!(g.to_close(0), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn usage_is_read_from_the_process() {
        let g = ResourceGuard::new(Some(GuardConfig {
            max_fds: Some(1),
            ..GuardConfig::default()
        }));
        let usage = g.usage();
        let fds = usage
            .iter()
            .find(|u| u.resource == Resource::FileDescriptors)
            .unwrap();
        assert!(fds.used >= 3, "stdin, stdout, stderr: {fds:?}");
        assert!(usage
            .iter()
            .any(|u| u.resource == Resource::Memory && u.used > 0));
        assert!(matches!(g.sample(), Pressure::Hard(u) if u.resource == Resource::FileDescriptors));
        assert!(descriptor_limit().is_some_and(|l| l > 0));
    }
}
