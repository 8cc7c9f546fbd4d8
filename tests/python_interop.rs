//! Interop with the official Python MCP SDK (PyPI `mcp` 2.3.0): its client
//! drives `arbor serve --stdio` in both protocol eras, through
//! `tests/python/interop.py`, and this test checks the summary it prints.
//!
//! The SDK lives in a venv at `<target dir>/py-mcp`, made on first use with
//! `python3 -m venv` and `pip install mcp==2.3.0` (PyPI access needed once).
//! Without python3 or pip the test fails: it does not skip.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

const SDK_VERSION: &str = "2.3.0";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/interop.py");
const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);
/// A setup lock older than this was left by a killed run.
const STALE_LOCK: Duration = Duration::from_secs(900);

/// target/<profile>/deps/<this test> → target/
fn target_dir() -> PathBuf {
    let mut path = std::env::current_exe().expect("the test binary's path");
    for _ in 0..3 {
        path.pop();
    }
    path
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// A command with no inherited Python settings that could point it elsewhere.
fn python(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .env("PYTHONNOUSERSITE", "1")
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// Runs `cmd` to completion, or kills it after `timeout`.
fn run_with_timeout(mut cmd: Command, timeout: Duration, what: &str) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start {cmd:?}: {e}"))?;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
                return Err(format!(
                    "{what}: timed out after {timeout:?}; its stderr:\n{stderr}"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{what}: waiting for it failed: {e}")),
        }
    };
    Ok(Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn describe(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether the venv's Python imports the SDK at the pinned version.
fn sdk_ready(python_bin: &Path) -> bool {
    if !python_bin.exists() {
        return false;
    }
    let mut cmd = python(python_bin);
    cmd.args([
        "-c",
        &format!(
            "import mcp, importlib.metadata as m; assert m.version('mcp') == '{SDK_VERSION}', m.version('mcp')"
        ),
    ]);
    run_with_timeout(cmd, Duration::from_secs(60), "checking the SDK")
        .is_ok_and(|o| o.status.success())
}

/// Held while the venv is made, so that concurrent test processes sharing
/// the target dir do not make it at the same time.
struct SetupLock(PathBuf);

impl SetupLock {
    fn acquire(path: PathBuf) -> Result<Self, String> {
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(SetupLock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        let _ = std::fs::remove_dir(&path);
                    } else if Instant::now() >= deadline {
                        return Err(format!(
                            "another run has held {} for too long",
                            path.display()
                        ));
                    } else {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for SetupLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Makes `<target>/py-mcp` with the SDK unless it is already there.
fn make_venv() -> Result<PathBuf, String> {
    let target = target_dir();
    let venv = target.join("py-mcp");
    let python_bin = venv_python(&venv);
    if sdk_ready(&python_bin) {
        return Ok(python_bin);
    }
    let _lock = SetupLock::acquire(target.join("py-mcp.lock"))?;
    // Another process may have made it while this one waited.
    if sdk_ready(&python_bin) {
        return Ok(python_bin);
    }
    let mut probe = python(Path::new("python3"));
    probe.arg("--version");
    let version = run_with_timeout(probe, Duration::from_secs(60), "python3 --version").map_err(|e| {
        format!(
            "python3 is needed to run the Python SDK interop test (install CPython 3.10+ with venv and pip): {e}"
        )
    })?;
    if !version.status.success() {
        return Err(format!("python3 --version failed:\n{}", describe(&version)));
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| format!("cannot remove the broken venv {}: {e}", venv.display()))?;
    }
    let mut create = python(Path::new("python3"));
    create.arg("-m").arg("venv").arg(&venv);
    let created = run_with_timeout(create, SETUP_TIMEOUT, "python3 -m venv")?;
    if !created.status.success() || !python_bin.exists() {
        return Err(format!(
            "python3 -m venv {} failed (on Debian/Ubuntu, install python3-venv):\n{}",
            venv.display(),
            describe(&created)
        ));
    }
    let mut install = python(&python_bin);
    install.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        &format!("mcp=={SDK_VERSION}"),
    ]);
    let installed = run_with_timeout(install, SETUP_TIMEOUT, "pip install")?;
    if !installed.status.success() {
        return Err(format!(
            "pip install mcp=={SDK_VERSION} into {} failed (pip and access to PyPI are needed):\n{}",
            venv.display(),
            describe(&installed)
        ));
    }
    if !sdk_ready(&python_bin) {
        return Err(format!(
            "mcp=={SDK_VERSION} was installed into {} but does not import",
            venv.display()
        ));
    }
    Ok(python_bin)
}

/// The venv's Python, made once per test process (the era tests run in
/// parallel and share it).
fn sdk_python() -> &'static Path {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match VENV.get_or_init(make_venv) {
        Ok(path) => path,
        Err(e) => panic!("the Python MCP SDK is not available: {e}"),
    }
}

/// Runs the interop script for `era` and returns its summary.
fn drive(era: &str) -> Value {
    let python_bin = sdk_python();
    let started = Instant::now();
    let mut cmd = python(python_bin);
    cmd.arg(SCRIPT).arg(ARBOR).arg(era);
    let output = run_with_timeout(cmd, RUN_TIMEOUT, &format!("interop.py {era}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "interop.py {era} failed:\n{}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "interop.py {era} printed no JSON summary ({e}):\n{}",
            describe(&output)
        )
    });
    eprintln!("interop.py {era}: {:?}", started.elapsed());
    summary
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
        .collect()
}

/// What both eras must show alike.
fn check_features(s: &Value) {
    let context = format!("summary: {s:#}");
    assert_eq!(s["sdk_version"], SDK_VERSION, "{context}");
    assert_eq!(s["server_info"]["name"], "arbor-demo", "{context}");

    let tools = strings(&s["tools"]);
    for tool in ["echo", "add", "count"] {
        assert!(tools.contains(&tool), "tool {tool} not listed: {tools:?}");
    }
    assert_eq!(s["add"], "5.5", "add(2, 3.5)");
    assert_eq!(s["echo"], "hello from python");
    assert_eq!(s["count"], "counted to 5");

    let progress = s["progress"].as_array().expect("progress");
    let values: Vec<f64> = progress
        .iter()
        .map(|p| p["progress"].as_f64().expect("a progress value"))
        .collect();
    assert!(values.len() >= 2, "progress notifications: {progress:?}");
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "progress must increase: {values:?}"
    );
    assert!(
        progress.iter().all(|p| p["total"] == 5.0),
        "progress total: {progress:?}"
    );
    assert_eq!(values.last(), Some(&5.0), "the final progress report");

    assert_eq!(
        strings(&s["resources"]),
        ["arbor://demo/counter", "arbor://demo/readme"]
    );
    assert_eq!(s["resource"]["uri"], "arbor://demo/readme");
    assert_eq!(s["resource"]["mime_type"], "text/plain");
    assert_eq!(
        s["resource"]["text"],
        "arbor serves MCP from supervised actors; kill one and it comes back."
    );

    assert_eq!(strings(&s["prompts"]), ["greet"]);
    assert_eq!(s["prompt"]["role"], "user");
    assert_eq!(s["prompt"]["text"], "Please greet Ada warmly.");

    // JSON-RPC -32602 reaches the SDK's caller as its MCPError.
    assert_eq!(s["invalid_params_code"], -32602);
    assert_eq!(
        s["invalid_add_arguments"]["is_error"], true,
        "{}",
        s["invalid_add_arguments"]
    );
    assert!(s["invalid_add_arguments"]["text"]
        .as_str()
        .unwrap_or_default()
        .contains("invalid arguments for tool add"));
    for case in ["unknown_tool", "prompt_missing_argument"] {
        let error = &s["errors"][case];
        assert_eq!(error["exception"], "MCPError", "{case}: {error}");
        assert_eq!(error["code"], -32602, "{case}: {error}");
    }
    assert_eq!(s["errors"]["unknown_resource"]["exception"], "MCPError");

    let wire = &s["wire"];
    assert_eq!(
        wire["transport_exceptions"].as_array().map(Vec::len),
        Some(0),
        "{wire}"
    );
    let received = strings(&wire["notifications_received"]);
    assert!(
        received
            .iter()
            .filter(|m| **m == "notifications/progress")
            .count()
            >= values.len(),
        "{received:?}"
    );
}

#[test]
fn the_python_sdk_drives_arbor_in_the_2026_07_28_era() {
    let s = drive("modern");
    let context = format!("summary: {s:#}");
    assert_eq!(s["era"], "modern");
    assert_eq!(s["protocol_version"], "2026-07-28", "{context}");
    assert_eq!(s["negotiation"], "discover", "{context}");
    assert!(
        strings(&s["discover_supported_versions"]).contains(&"2026-07-28"),
        "{context}"
    );

    let wire = &s["wire"];
    let requests = strings(&wire["requests"]);
    assert_eq!(requests.first(), Some(&"server/discover"), "{requests:?}");
    assert!(!requests.contains(&"initialize"), "{requests:?}");
    // Every request carried the 2026-07-28 envelope.
    assert_eq!(
        strings(&wire["request_envelope_versions"]),
        ["2026-07-28"],
        "{wire}"
    );
    assert_eq!(
        wire["requests_with_client_capabilities"].as_u64(),
        Some(requests.len() as u64),
        "{wire}"
    );
    // No client notifications exist in this era; every result is shaped.
    assert_eq!(strings(&wire["notifications_sent"]).len(), 0, "{wire}");
    assert!(wire["results"].as_u64().unwrap() > 0, "{wire}");
    assert_eq!(wire["results_with_result_type"], wire["results"], "{wire}");
    assert_eq!(strings(&wire["result_types"]), ["complete"], "{wire}");
    // 2026-07-28: an unknown resource is -32602.
    assert_eq!(s["errors"]["unknown_resource"]["code"], -32602, "{context}");

    check_features(&s);
}

#[test]
fn the_python_sdk_drives_arbor_in_the_handshake_era() {
    let s = drive("handshake");
    let context = format!("summary: {s:#}");
    assert_eq!(s["era"], "handshake");
    // The SDK offers its newest handshake version, which arbor speaks.
    assert_eq!(s["protocol_version"], "2025-11-25", "{context}");
    assert_eq!(s["negotiation"], "initialize", "{context}");

    let wire = &s["wire"];
    let requests = strings(&wire["requests"]);
    assert_eq!(requests.first(), Some(&"initialize"), "{requests:?}");
    assert!(!requests.contains(&"server/discover"), "{requests:?}");
    assert_eq!(
        strings(&wire["notifications_sent"]),
        ["notifications/initialized"],
        "{wire}"
    );
    // No 2026-07-28 envelope on requests, no resultType on results.
    assert_eq!(
        strings(&wire["request_envelope_versions"]),
        ["None"],
        "{wire}"
    );
    assert_eq!(wire["requests_with_client_capabilities"], 0, "{wire}");
    assert!(wire["results"].as_u64().unwrap() > 0, "{wire}");
    assert_eq!(wire["results_with_result_type"], 0, "{wire}");
    // Handshake era: an unknown resource is -32002.
    assert_eq!(s["errors"]["unknown_resource"]["code"], -32002, "{context}");

    check_features(&s);
}
