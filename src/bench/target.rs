//! The servers a run measures: each started afresh for every round from a
//! command line with port placeholders, watched through `/proc`.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use parking_lot::Mutex;

use super::conn::Kind;
use tokio::io::AsyncBufReadExt as _;

/// How long a server may take to listen on every port it was given.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a server may take to stop after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(10);
/// The lines of a server's stderr kept to explain a failure.
const STDERR_TAIL: usize = 20;

/// A server to measure, as given on the command line: `NAME=COMMAND`.
#[derive(Clone, Debug)]
pub(crate) struct TargetSpec {
    /// How the report names it.
    pub(crate) name: String,
    /// A shell command; `{http}`, `{ws}`, `{tcp}` and `{admin}` are
    /// replaced with free loopback ports, and only the transports named
    /// are measured.
    pub(crate) command: String,
}

impl std::str::FromStr for TargetSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, command) = s
            .split_once('=')
            .filter(|(name, command)| !name.trim().is_empty() && !command.trim().is_empty())
            .ok_or_else(|| format!("{s:?}: expected NAME=COMMAND"))?;
        Ok(TargetSpec {
            name: name.trim().to_string(),
            command: command.to_string(),
        })
    }
}

impl TargetSpec {
    /// This `arbor serve`, on every transport.
    pub(crate) fn this_arbor() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this program")?;
        let exe = exe.to_str().context("this program's path is not UTF-8")?;
        Ok(TargetSpec {
            name: "arbor".into(),
            command: format!(
                "'{}' serve --http 127.0.0.1:{{http}} --ws 127.0.0.1:{{ws}} \
                 --tcp 127.0.0.1:{{tcp}} --admin 127.0.0.1:{{admin}} --max-sessions 100000 \
                 --no-rate-limits --no-resource-guard",
                exe.replace('\'', r"'\''")
            ),
        })
    }
}

impl TargetSpec {
    /// Whether its command names the port `kind` is served on.
    pub(crate) fn serves(&self, kind: Kind) -> bool {
        let placeholder = match kind {
            Kind::Tcp => "{tcp}",
            Kind::Ws => "{ws}",
            Kind::Http | Kind::Modern => "{http}",
        };
        self.command.contains(placeholder)
    }
}

/// Where a started server listens: the transports its command named.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Endpoints {
    pub(crate) http: Option<SocketAddr>,
    pub(crate) ws: Option<SocketAddr>,
    pub(crate) tcp: Option<SocketAddr>,
    /// The admin listener, when the command names `{admin}`.
    pub(crate) admin: Option<SocketAddr>,
}

/// A server process, killed when dropped.
#[derive(Debug)]
pub(crate) struct Running {
    child: tokio::process::Child,
    pid: u32,
    pub(crate) endpoints: Endpoints,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Running {
    /// Starts `spec` and waits until it accepts on every port it was given.
    pub(crate) async fn start(spec: &TargetSpec) -> anyhow::Result<Running> {
        let mut command = spec.command.clone();
        let mut endpoints = Endpoints::default();
        let mut ports = Vec::new();
        for (placeholder, slot) in [
            ("{http}", Some(&mut endpoints.http)),
            ("{ws}", Some(&mut endpoints.ws)),
            ("{tcp}", Some(&mut endpoints.tcp)),
            ("{admin}", Some(&mut endpoints.admin)),
        ] {
            if !command.contains(placeholder) {
                continue;
            }
            let port = free_port()?;
            command = command.replace(placeholder, &port.to_string());
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            if let Some(slot) = slot {
                *slot = Some(addr);
            }
            ports.push(addr);
        }
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}: {command}", spec.name))?;
        let pid = child.id().context("the server exited at once")?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            let tail = stderr.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut tail = tail.lock();
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        let mut running = Running {
            child,
            pid,
            endpoints,
            stderr,
        };
        let deadline = Instant::now() + READY_WITHIN;
        for addr in ports {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                if let Ok(Some(status)) = running.child.try_wait() {
                    anyhow::bail!("{} exited ({status}): {}", spec.name, running.stderr_tail());
                }
                if Instant::now() > deadline {
                    anyhow::bail!(
                        "{} did not listen on {addr} within {READY_WITHIN:?}: {}",
                        spec.name,
                        running.stderr_tail()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(running)
    }

    /// The server's CPU time and memory now.
    pub(crate) fn usage(&self) -> anyhow::Result<Usage> {
        Usage::of(self.pid)
    }

    /// How many descriptors the server has open (`None` where `/proc`
    /// does not say).
    pub(crate) fn open_descriptors(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .ok()
            .map(Iterator::count)
    }

    /// The last lines the server wrote to stderr.
    pub(crate) fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Stops the server: SIGTERM (a profiler wrapping it writes its
    /// output, a server shuts down in order), SIGKILL after
    /// [`STOP_WITHIN`].
    pub(crate) async fn stop(mut self) {
        let asked = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await
            .is_ok_and(|s| s.success());
        if asked
            && tokio::time::timeout(STOP_WITHIN, self.child.wait())
                .await
                .is_ok()
        {
            return;
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// A loopback port nobody listens on now, below the ephemeral range: a
/// port the kernel picks (port 0) is an ephemeral one, which the load
/// generator's own connections may hold or leave in TIME_WAIT.
fn free_port() -> anyhow::Result<u16> {
    // Any spread will do: a start that differs from run to run, then a
    // prime stride through the range.
    let span = u32::from(PORTS.end - PORTS.start);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id();
    for i in 0..200u32 {
        let offset = seed.wrapping_add(i.wrapping_mul(7919)) % span;
        let port = PORTS.start + u16::try_from(offset).unwrap_or(0);
        if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port in {PORTS:?}")
}

/// Where servers are given ports: below Linux's ephemeral range
/// (32768–60999 by default).
const PORTS: std::ops::Range<u16> = 10_000..32_000;

/// What a process has used, from `/proc`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    /// User plus system CPU time.
    pub(crate) cpu: Duration,
    /// Resident memory, bytes.
    pub(crate) rss: u64,
}

/// `/proc/PID/stat` counts CPU time in USER_HZ ticks, 100 a second on
/// every Linux architecture (the kernel's ABI, whatever its own HZ).
const TICKS_PER_SECOND: u64 = 100;

impl Usage {
    /// `pid`'s usage (`std::process::id()` for this one).
    pub(crate) fn of(pid: u32) -> anyhow::Result<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        // The command name may hold spaces and parentheses: fields are
        // counted after its closing one (utime and stime are 14 and 15).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let (Some(user), Some(system)) = (tick(11), tick(12)) else {
            anyhow::bail!("/proc/{pid}/stat: no CPU times in {stat:?}");
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let rss_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("/proc/{pid}/status: no VmRSS"))?;
        Ok(Usage {
            cpu: Duration::from_millis((user + system) * 1000 / TICKS_PER_SECOND),
            rss: rss_kb * 1024,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_a_name_and_a_command() {
        let spec: TargetSpec = "rmcp=./peer --port {http}".parse().unwrap();
        assert_eq!(spec.name, "rmcp");
        assert_eq!(spec.command, "./peer --port {http}");
        assert!(spec.serves(Kind::Http) && spec.serves(Kind::Modern));
        assert!(!spec.serves(Kind::Tcp) && !spec.serves(Kind::Ws));
        assert!("no-command=".parse::<TargetSpec>().is_err());
        assert!("=cmd".parse::<TargetSpec>().is_err());
        assert!("nothing".parse::<TargetSpec>().is_err());
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let usage = Usage::of(std::process::id()).unwrap();
        assert!(usage.rss > 1024 * 1024, "{usage:?}");
    }
}
