//! `arbor bench`: a load generator on arbor's own client. It starts each
//! server afresh per round (interleaved: round 1 of every server, then
//! round 2…), holds connections of every kind, sends one update to all of
//! them, drives requests, and reads the server's CPU and memory from
//! `/proc`. Loopback only; bounded in connections and in time.

mod conn;
mod drive;
mod hold;
mod report;
pub(crate) mod soak;
mod target;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use conn::{Dialer, Kind};
use drive::{Drive, Op};
use report::{Report, RoundReport, ServerRounds};
use target::{Running, TargetSpec};

/// The most connections of a kind one run holds (several processes are
/// needed beyond one process's descriptors anyway).
const MAX_CONNECTIONS: usize = 100_000;
/// Descriptors kept aside for everything but the held connections.
const SPARE_FDS: u64 = 200;
/// The most clients one drive uses.
const MAX_CLIENTS: usize = 4096;

/// `arbor bench`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// A peer to measure beside this arbor, `NAME=COMMAND`, with `{http}`,
    /// `{ws}`, `{tcp}`, `{admin}` where its ports go (free loopback ports
    /// are filled in; only the transports named are measured). Repeatable.
    /// This arbor (`arbor serve`, every transport) comes first unless one
    /// named `arbor` is given; ratios are of the first against each other.
    #[arg(long = "server", value_name = "NAME=COMMAND")]
    servers: Vec<TargetSpec>,
    /// Connections held of each kind (lowered to what this process's
    /// descriptor limit allows).
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// The kinds held, one after another.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "tcp,ws,http,modern"
    )]
    hold: Vec<Kind>,
    /// Dials in flight while the held connections open.
    #[arg(long, default_value_t = 256)]
    parallel: usize,
    /// Hold without the fan-out (one update sent to every held connection).
    #[arg(long)]
    no_fanout: bool,
    /// The kinds requests are driven on.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "http,modern")]
    drive: Vec<Kind>,
    /// Clients per drive, each on its own connection (comma-separated: one
    /// drive per count).
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    clients: Vec<usize>,
    /// How long each drive lasts.
    #[arg(long, default_value = "5s")]
    duration: humantime::Duration,
    /// Requests a second over all clients [default: flat out].
    #[arg(long)]
    rate: Option<f64>,
    /// After each flat-out drive, one more at half the rate it reached:
    /// the latency at half of peak.
    #[arg(long)]
    half_peak: bool,
    /// The requests sent, in turn.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "call")]
    mix: Vec<Op>,
    /// Rounds per server; the report gives medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Loopback source addresses dialled from (127.0.0.1 …), each with its
    /// own ephemeral ports. The kernel's search for a free port grows with
    /// how full a source's range is: 19K from one address opened 2–4×
    /// slower than from 16.
    #[arg(long, default_value_t = 16)]
    sources: u8,
    /// Also write the whole report, every round, as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The whole run stops after this long.
    #[arg(long, default_value = "30m")]
    time_limit: humantime::Duration,
    /// Exit 1 if the first server failed anything: a connection, a
    /// request, a subscriber not told, a kind it could not serve.
    #[arg(long)]
    strict: bool,
}

/// Runs the benchmark, prints the table (stdout) and progress (stderr).
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let limit = Duration::from(args.time_limit);
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    match tokio::time::timeout(limit, bench(args, command_line)).await {
        Ok(outcome) => outcome,
        Err(_) => anyhow::bail!("the run took longer than --time-limit {limit:?}"),
    }
}

async fn bench(
    mut args: BenchArgs,
    command_line: String,
) -> anyhow::Result<std::process::ExitCode> {
    if !args.servers.iter().any(|s| s.name == "arbor") {
        args.servers.insert(0, TargetSpec::this_arbor()?);
    }
    anyhow::ensure!(!args.mix.is_empty(), "--mix: name at least one request");
    anyhow::ensure!((1..=20).contains(&args.rounds), "--rounds: 1 to 20");
    anyhow::ensure!(args.sources >= 1, "--sources: at least 1");
    anyhow::ensure!(
        Duration::from(args.duration) <= Duration::from_secs(600),
        "--duration: at most 10 minutes"
    );
    anyhow::ensure!(
        args.clients.iter().all(|c| (1..=MAX_CLIENTS).contains(c)),
        "--clients: 1 to {MAX_CLIENTS} each"
    );
    let fds = descriptor_limit();
    let held = args
        .connections
        .min(MAX_CONNECTIONS)
        .min(usize::try_from(fds.saturating_sub(SPARE_FDS)).unwrap_or(usize::MAX));
    if held < args.connections {
        eprintln!(
            "arbor bench: holding {held} connections of each kind, not {} \
             (descriptor limit {fds}; one process holds one per connection)",
            args.connections
        );
    }
    let load_before = load_average();
    let mut servers: Vec<ServerRounds> = args
        .servers
        .iter()
        .map(|s| ServerRounds::new(&s.name))
        .collect();
    for round in 1..=args.rounds {
        for (spec, rounds) in args.servers.iter().zip(&mut servers) {
            let progress = Progress {
                prefix: format!("[{} {round}/{}]", spec.name, args.rounds),
            };
            eprintln!("{} starting", progress.prefix);
            let report = one_round(&args, spec, held, &progress).await?;
            rounds.rounds.push(report);
        }
    }
    let report = Report {
        command: command_line,
        machine: machine(),
        load_before,
        load_after: load_average(),
        rounds: args.rounds,
        connections: held,
        servers,
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    let failures = report.failures_of_first();
    if args.strict && !failures.is_empty() {
        eprintln!(
            "arbor bench: {} failed: {}",
            report.servers[0].name,
            failures.join("; ")
        );
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// One server, started afresh, through every hold and drive.
async fn one_round(
    args: &BenchArgs,
    spec: &TargetSpec,
    held: usize,
    progress: &Progress,
) -> anyhow::Result<RoundReport> {
    let mut report = RoundReport::default();
    // A fresh server for each kind held: memory freed by the connections
    // of one kind would be reused by the next, and understate its cost.
    for &kind in args.hold.iter().filter(|k| spec.serves(**k)) {
        let server = Running::start(spec).await?;
        let dialer = Dialer::new(server.endpoints, args.sources)?;
        let outcome = hold::hold(
            &dialer,
            &server,
            kind,
            held,
            args.parallel,
            !args.no_fanout,
            progress,
        )
        .await;
        match outcome {
            Ok(hold) => report.holds.push(hold),
            Err(e) => report.not_served.push(e.to_string()),
        }
        note_death(&server, &mut report);
        server.stop().await;
    }
    let server = Running::start(spec).await?;
    let dialer = Dialer::new(server.endpoints, args.sources)?;
    report.idle_rss_bytes = server.usage()?.rss;
    for &kind in args.drive.iter().filter(|k| spec.serves(**k)) {
        for &clients in &args.clients {
            let mut drive = Drive {
                kind,
                clients,
                duration: args.duration.into(),
                rate: args.rate,
                mix: &args.mix,
            };
            let peak = match drive::drive(&dialer, &server, &drive, progress).await? {
                Ok(peak) => peak,
                Err(why) => {
                    report
                        .not_served
                        .push(format!("{} × {clients}: {why}", kind.label()));
                    break;
                }
            };
            let half = args.half_peak && args.rate.is_none() && peak.req_per_s > 0.0;
            let rate = peak.req_per_s / 2.0;
            report.drives.push(peak);
            if half {
                drive.rate = Some(rate);
                if let Ok(at_half) = drive::drive(&dialer, &server, &drive, progress).await? {
                    report.drives.push(at_half);
                }
            }
        }
    }
    note_death(&server, &mut report);
    server.stop().await;
    Ok(report)
}

/// A server gone before it was stopped is a finding.
fn note_death(server: &Running, report: &mut RoundReport) {
    if let Err(e) = server.usage() {
        report
            .not_served
            .push(format!("the server died: {e}: {}", server.stderr_tail()));
    }
}

/// Progress lines on stderr while something runs.
#[derive(Debug)]
pub(crate) struct Progress {
    prefix: String,
}

impl Progress {
    /// `[server round/rounds]`.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `work`, printing `status()` every second until it is done.
    pub(crate) async fn while_running<F: Future>(
        &self,
        work: F,
        status: impl Fn() -> String,
    ) -> F::Output {
        let mut work = std::pin::pin!(work);
        let started = Instant::now();
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    eprintln!("{} ({:.0} s)", status(), started.elapsed().as_secs_f64());
                }
            }
        }
    }
}

/// This process's soft descriptor limit (main raised it to the hard one).
fn descriptor_limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
}

/// `/proc/loadavg`'s three averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The processor and how many there are.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown processor".into());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    format!("{cores} × {model}")
}
