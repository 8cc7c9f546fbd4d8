//! `arbor tree`, `arbor kill` and `arbor chaos` against a running
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
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Served {
    let mut child = Command::new(ARBOR)
        .arg("serve")
        .envs(support::FREE_PORTS)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut admin_line = String::new();
    while !admin_line.starts_with("admin ") {
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
