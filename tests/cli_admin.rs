//! `arbor tree`, `arbor kill`, `arbor chaos` and `arbor reset` against a running
//! `arbor serve`, as a person would use them: the admin URL and token that
//! `serve` prints, what each command prints, and the exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");

struct Served {
    child: Child,
    admin: String,
    token: String,
    /// The TCP listener's address.
    tcp: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Served {
    serve_with(&[], Stdio::null())
}

/// `arbor serve` with `env` over the free ports, its log to `stderr`.
fn serve_with(env: &[(&str, &str)], stderr: Stdio) -> Served {
    let mut child = Command::new(ARBOR)
        .arg("serve")
        .envs(support::FREE_PORTS)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut admin_line = String::new();
    let mut tcp = String::new();
    while !admin_line.starts_with("admin ") {
        if let Some(addr) = admin_line.trim().strip_prefix("tcp://") {
            tcp = addr.to_string();
        }
        admin_line.clear();
        assert!(out.read_line(&mut admin_line).unwrap() > 0, "no admin line");
    }
    let admin = admin_line.split_whitespace().nth(1).unwrap().to_string();
    let token = admin_line
        .rsplit("Bearer ")
        .next()
        .unwrap()
        .trim_end_matches(|c: char| c == ')' || c.is_whitespace())
        .to_string();
    let mut dashboard = String::new();
    out.read_line(&mut dashboard).unwrap();
    assert_eq!(
        dashboard.trim(),
        format!("dashboard {admin}/#token={token}")
    );
    Served {
        child,
        admin,
        token,
        tcp,
    }
}

fn arbor(served: &Served, args: &[&str]) -> Output {
    Command::new(ARBOR)
        .args(args)
        .args(["--admin", &served.admin])
        .env("ARBOR_ADMIN_TOKEN", &served.token)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn tree_kill_and_chaos_against_a_running_server() {
    let served = serve();
    let tree = arbor(&served, &["tree", "--limit", "2"]);
    assert!(tree.status.success(), "{tree:?}");
    let text = stdout(&tree);
    assert!(text.starts_with("transports supervisor <0."), "{text}");
    assert!(
        text.contains("\n    tcp-connections supervisor <0."),
        "{text}"
    );
    assert!(text.contains("restarts=0 (0/3 in 5000 ms)"), "{text}");
    assert!(text.contains("… 2 more"), "{text}");
    // One subtree only.
    let sub = arbor(&served, &["tree", "--path", "connections/http"]);
    assert!(stdout(&sub).starts_with("http supervisor <0."), "{sub:?}");

    let killed = arbor(&served, &["kill", "connections/tcp-connections/shard-0"]);
    assert!(killed.status.success(), "{killed:?}");
    assert!(
        stdout(&killed).starts_with("killed connections/tcp-connections/shard-0 supervisor <0."),
        "{killed:?}"
    );
    let chaos = arbor(
        &served,
        &[
            "chaos",
            "--subtree",
            "connections/ws-connections",
            "--target",
            "supervisors",
            "--count",
            "2",
            "--seed",
            "9",
        ],
    );
    assert!(chaos.status.success(), "{chaos:?}");
    let text = stdout(&chaos);
    assert!(text.starts_with("seed 9\n"), "{text}");
    assert_eq!(
        text.matches("killed connections/ws-connections/shard-")
            .count(),
        2,
        "{text}"
    );
    let rated = arbor(
        &served,
        &[
            "chaos",
            "--subtree",
            "connections/http/http-sessions",
            "--rate",
            "10/s",
            "--for",
            "300ms",
        ],
    );
    assert!(rated.status.success(), "{rated:?}");
    // The restarts show in the tree.
    let after = stdout(&arbor(
        &served,
        &["tree", "--path", "connections/tcp-connections"],
    ));
    assert!(
        after.contains("restarts=1 (1/3 in 5000 ms) crashes=1"),
        "{after}"
    );

    // What failed, by exit code: 4 the API refused, 3 no listener or a bad
    // token, 2 usage.
    let nothing = arbor(&served, &["kill", "connections/nothing"]);
    assert_eq!(nothing.status.code(), Some(4), "{nothing:?}");
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no child at path"));
    let wrong = Command::new(ARBOR)
        .args([
            "tree",
            "--admin",
            &served.admin,
            "--token",
            "not-the-token-at-all",
        ])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(3), "{wrong:?}");
    let gone = Command::new(ARBOR)
        .args(["tree", "--admin", "http://127.0.0.1:1", "--token", "x"])
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(3), "{gone:?}");
    let usage = arbor(&served, &["chaos", "--rate", "5/s"]);
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}

/// A TCP client whose session is up (it has had an answer).
fn session(served: &Served) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(&served.tcp).unwrap();
    let meta = r#"{"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}"#;
    writeln!(
        stream,
        r#"{{"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {{"_meta": {meta}}}}}"#
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("\"result\""), "{line}");
    stream
}

#[test]
fn a_session_killed_past_the_cascade_threshold_isolates_tcp_until_arbor_reset() {
    let served = serve_with(
        &[
            ("ARBOR_SERVER__CASCADE__FAILURES", "0"),
            ("ARBOR_SERVER__CASCADE__COOL_DOWN", "0s"),
        ],
        Stdio::null(),
    );
    let _client = session(&served);
    let chaos = arbor(
        &served,
        &[
            "chaos",
            "--subtree",
            "connections/tcp-connections",
            "--count",
            "1",
        ],
    );
    assert!(chaos.status.success(), "{chaos:?}");
    // The next client is refused with the reason.
    let mut refused = String::new();
    BufReader::new(std::net::TcpStream::connect(&served.tcp).unwrap())
        .read_line(&mut refused)
        .unwrap();
    assert!(refused.contains("-32032"), "{refused}");
    let reset = arbor(&served, &["reset", "tcp-connections"]);
    assert!(reset.status.success(), "{reset:?}");
    let text = stdout(&reset);
    assert!(text.starts_with("lifted tcp-connections\n"), "{text}");
    assert!(
        text.contains("tcp-connections: serving (0 of 0 failures in 10000 ms, 1 trips)"),
        "{text}"
    );
    let _again = session(&served);
    let unknown = arbor(&served, &["reset", "nothing"]);
    assert_eq!(unknown.status.code(), Some(4), "{unknown:?}");
}

#[test]
fn under_action_stop_a_trip_stops_arbor_serve_with_the_reason() {
    let log = std::env::temp_dir().join(format!("arbor-andon-{}.log", std::process::id()));
    let mut served = serve_with(
        &[
            ("ARBOR_SERVER__CASCADE__FAILURES", "0"),
            ("ARBOR_SERVER__CASCADE__ACTION", "stop"),
        ],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let _client = session(&served);
    let chaos = arbor(
        &served,
        &[
            "chaos",
            "--subtree",
            "connections/tcp-connections",
            "--count",
            "1",
        ],
    );
    assert!(chaos.status.success(), "{chaos:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "arbor serve did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.contains("the transport tree stopped: error: andon: cascade in tcp-connections: 1 abnormal exits within 10s"),
        "{text}"
    );
}

#[test]
fn kill_node_ends_the_whole_server_as_sigkill_would() {
    let mut served = serve();
    let killed = arbor(&served, &["kill", "--node"]);
    assert!(killed.status.success(), "{killed:?}");
    assert!(
        stdout(&killed).starts_with("killing node (pid "),
        "{killed:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the node still runs");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(137), "{status}");
    // Without the token: refused, and nothing dies.
    let served = serve();
    let refused = Command::new(ARBOR)
        .args(["kill", "--node", "--admin", &served.admin])
        .env("ARBOR_ADMIN_TOKEN", "not-the-token-0123456789")
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{refused:?}");
    let tree = arbor(&served, &["tree", "--limit", "1"]);
    assert!(tree.status.success(), "{tree:?}");
}
