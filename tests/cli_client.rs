//! `arbor tools|call|read|prompt` as a person or a script runs them, against
//! a running `arbor serve` on every transport and against a server spawned
//! over stdio: what they print, and exit codes that say what failed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");

/// `arbor serve`, killed when dropped, with the URLs it printed.
struct Served {
    child: std::process::Child,
    urls: Vec<String>,
}

impl Served {
    fn start() -> Served {
        Served::start_with(&[])
    }

    /// `arbor serve` with `flags`.
    fn start_with(flags: &[&str]) -> Served {
        let mut child = Command::new(ARBOR)
            .arg("serve")
            .args(flags)
            .envs(support::FREE_PORTS)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut urls = Vec::new();
        for _ in 0..4 {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            urls.push(line.trim().to_string());
        }
        Served { child, urls }
    }

    fn url(&self, prefix: &str, suffix: &str) -> String {
        self.urls
            .iter()
            .find(|u| u.starts_with(prefix) && u.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {prefix}…{suffix} in {:?}", self.urls))
            .clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn arbor(args: &[&str]) -> Output {
    Command::new(ARBOR).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_command_on_every_transport() {
    let served = Served::start();
    let targets = [
        (served.url("http://", "/mcp"), "auto"),
        (served.url("http://", "/mcp"), "handshake"),
        (served.url("http://", "/sse"), "2024-11-05"),
        (served.url("ws://", "/mcp"), "auto"),
        (served.url("tcp://", ""), "handshake"),
    ];
    for (url, era) in &targets {
        let what = format!("{url} --era {era}");
        let tools = arbor(&["tools", url, "--era", era, "--json"]);
        assert!(tools.status.success(), "{what}: {tools:?}");
        let listed: serde_json::Value = serde_json::from_slice(&tools.stdout).unwrap();
        let names: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(
            names.contains(&"add") && names.contains(&"echo"),
            "{what}: {names:?}"
        );

        let sum = arbor(&["call", url, "add", r#"{"a": 2, "b": 40}"#, "--era", era]);
        assert!(sum.status.success(), "{what}: {sum:?}");
        assert_eq!(stdout(&sum).trim(), "42", "{what}");

        let readme = arbor(&["read", url, "arbor://demo/readme", "--era", era]);
        assert!(
            stdout(&readme).contains("supervised actors"),
            "{what}: {readme:?}"
        );

        let greeting = arbor(&["prompt", url, "greet", "name=Ada", "--era", era]);
        assert!(greeting.status.success(), "{what}: {greeting:?}");
        assert!(
            stdout(&greeting).starts_with("user: ") && stdout(&greeting).contains("Ada"),
            "{what}: {greeting:?}"
        );
    }
}

#[test]
fn a_retried_call_with_its_idempotency_key_does_not_bump_twice() {
    let served = Served::start();
    let bump = |url: &str, key: Option<&str>| {
        let mut args = vec!["call", url, "bump"];
        if let Some(key) = key {
            args.extend(["--idempotency-key", key]);
        }
        let out = arbor(&args);
        assert!(out.status.success(), "{out:?}");
        stdout(&out).trim().parse::<u64>().unwrap()
    };
    let tcp = served.url("tcp://", "");
    let first = bump(&tcp, Some("retry-1"));
    // The retry, over another transport and era, from the same address.
    assert_eq!(bump(&served.url("http://", "/mcp"), Some("retry-1")), first);
    assert_eq!(bump(&tcp, Some("retry-1")), first);
    assert_eq!(bump(&tcp, None), first + 1, "no key: it runs");
    assert_eq!(bump(&tcp, Some("retry-2")), first + 2, "a new key runs");
}

#[test]
fn exit_codes_say_what_failed() {
    let served = Served::start();
    let http = served.url("http://", "/mcp");
    // The tool ran and said it failed: 1, its message on stdout.
    let bad_args = arbor(&["call", &http, "add", r#"{"a": "x"}"#]);
    assert_eq!(bad_args.status.code(), Some(1), "{bad_args:?}");
    // Usage: 2.
    assert_eq!(
        arbor(&["call", &http, "add", "{not json"]).status.code(),
        Some(2)
    );
    assert_eq!(
        arbor(&["tools", &http, "--era", "1999-01-01"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(arbor(&["tools", "ftp://x"]).status.code(), Some(2));
    // Nobody there: 3.
    assert_eq!(
        arbor(&["tools", "http://127.0.0.1:9/mcp"]).status.code(),
        Some(3)
    );
    // A JSON-RPC error: 4, with its data.
    let unknown = arbor(&["call", &http, "no-such-tool"]);
    assert_eq!(unknown.status.code(), Some(4), "{unknown:?}");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no-such-tool"));
    let missing = arbor(&["read", &http, "arbor://demo/nothing", "--era", "handshake"]);
    assert_eq!(missing.status.code(), Some(4), "{missing:?}");
}

#[test]
fn a_server_spawned_over_stdio() {
    let tools = arbor(&["tools", "--", ARBOR, "serve", "--stdio"]);
    assert!(tools.status.success(), "{tools:?}");
    assert!(
        stdout(&tools).lines().any(|l| l.starts_with("echo\t")),
        "{tools:?}"
    );
    let echoed = arbor(&[
        "call",
        "echo",
        r#"{"message": "over stdio"}"#,
        "--",
        ARBOR,
        "serve",
        "--stdio",
    ]);
    assert_eq!(stdout(&echoed).trim(), "over stdio", "{echoed:?}");
    // A program that is not there: no connection.
    let absent = arbor(&["tools", "--", "/nonexistent/mcp-server"]);
    assert_eq!(absent.status.code(), Some(3), "{absent:?}");
}

#[test]
fn tokens_from_arbor_token_open_the_example_auth_server_on_every_transport() {
    let served = Served::start_with(&["--config", "examples/auth/arbor.toml"]);
    let http = served.url("http://", "/mcp");
    let token = |scope: &str| {
        stdout(&arbor(&["token", "--scope", scope]))
            .trim()
            .to_string()
    };
    let (plain, writer) = (token("mcp"), token("mcp counter:write"));
    let refused = arbor(&["tools", &http]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("-32034"),
        "{refused:?}"
    );
    let listed = stdout(&arbor(&["tools", &http, "--token", &writer]));
    assert!(listed.contains("bump"), "{listed}");
    let listed = stdout(&arbor(&["tools", &http, "--token", &plain]));
    assert!(
        listed.contains("echo") && !listed.contains("bump"),
        "{listed}"
    );
    let denied = arbor(&["call", &http, "bump", "{}", "--token", &plain]);
    assert_eq!(denied.status.code(), Some(4), "{denied:?}");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("counter:write"));
    for url in [
        served.url("ws://", "/mcp"),
        served.url("tcp://", ""),
        served.url("http://", "/sse"),
    ] {
        let echoed = arbor(&[
            "call",
            &url,
            "echo",
            r#"{"message": "hi"}"#,
            "--token",
            &plain,
        ]);
        assert!(echoed.status.success(), "{url}: {echoed:?}");
        assert!(stdout(&echoed).contains("hi"), "{url}");
    }
}

/// A CA, and a certificate it signed for localhost and 127.0.0.1, in `dir`:
/// the paths of the CA, the certificate and its key.
fn test_ca(dir: &std::path::Path) -> [String; 3] {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let leaf =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = leaf
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    let paths = ["ca.pem", "cert.pem", "key.pem"].map(|f| dir.join(f).display().to_string());
    std::fs::write(&paths[0], ca_pem).unwrap();
    std::fs::write(&paths[1], cert.pem()).unwrap();
    std::fs::write(&paths[2], key.serialize_pem()).unwrap();
    paths
}

#[test]
fn tls_on_every_transport_with_the_servers_ca() {
    let dir = std::env::temp_dir().join(format!("arbor-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let [ca, cert, key] = test_ca(&dir);
    let served = Served::start_with(&["--tls-cert", &cert, "--tls-key", &key]);
    for (prefix, suffix) in [
        ("https://", "/mcp"),
        ("https://", "/sse"),
        ("wss://", "/mcp"),
        ("tcp+tls://", ""),
    ] {
        let url = served.url(prefix, suffix);
        let echoed = arbor(&[
            "call",
            &url,
            "echo",
            r#"{"message": "sealed"}"#,
            "--ca",
            &ca,
        ]);
        assert!(echoed.status.success(), "{url}: {echoed:?}");
        assert!(stdout(&echoed).contains("sealed"), "{url}");
    }
    // Without the CA the server's certificate is not trusted.
    let refused = arbor(&["tools", &served.url("https://", "/mcp")]);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
}
