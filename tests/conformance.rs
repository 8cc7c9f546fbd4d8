//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`
//! 0.2.0-alpha.12) against `examples/conformance_server.rs`, on both wires:
//! `--spec-version 2025-11-25` (initialize handshake, sessions) and
//! `--spec-version 2026-07-28` (stateless, per-request `_meta`), and the
//! extension scenarios (tasks), which run off the spec timeline.
//!
//! [`SCENARIOS`] is the one list of what runs; add a scenario there with the
//! spec versions to run it at (`conformance list` shows each scenario's
//! applicability; a version outside it would be skipped by the suite, which
//! this test treats as a failure, so that nothing passes by not running).
//!
//! The suite runs one scenario per process: `conformance server --url URL
//! --scenario S --spec-version V -o DIR`. It exits 1 when a check failed
//! (warnings do not fail it) and writes `DIR/server-S-<time>/checks.json`:
//! an array of `{id, name, description, status, errorMessage?, details?}`
//! with status SUCCESS, FAILURE, WARNING, SKIPPED or INFO. This test reads
//! that file and fails, after running everything, with each failed check's
//! id, message and details; warnings are printed but do not fail it. The
//! results stay in `<target>/conformance-results/<version>/<scenario>/`.
//!
//! The example server is built by `cargo build --example conformance_server`
//! run from here. Cargo gives integration tests `CARGO_BIN_EXE_*` for bins
//! only, not for examples, and `cargo test` builds examples only when no
//! target filter is given (`cargo test --test conformance` skips them), so
//! relying on a prebuilt binary would run a stale or missing one. Cargo
//! releases the target dir's lock before it runs tests, so the nested build
//! does not deadlock; under `cargo test --workspace` the example is already
//! fresh and the build is a no-op check of about a second. It uses the same
//! target dir and profile as this test binary, so nothing is rebuilt twice.
//!
//! The suite and Node 22 come from `<target>/ts-mcp` (tests/support).
//!
//! To point the same scenarios at another server (e.g. to check this harness
//! against a reference server), set `ARBOR_CONFORMANCE_URL` to its MCP URL:
//! then no example is built or started.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use support::{describe, node_prefix, run_with_timeout, target_dir, Server, CONFORMANCE_VERSION};

const V2025: &str = "2025-11-25";
const V2026: &str = "2026-07-28";
/// An extension scenario: off the spec timeline, run without
/// `--spec-version` (the suite skips it at any version).
const EXT: &str = "extension";

/// Every scenario this test runs, with the spec versions it runs at.
const SCENARIOS: &[(&str, &[&str])] = &[
    // Transports (the transports issue's list).
    ("dns-rebinding-protection", &[V2025, V2026]),
    ("http-header-validation", &[V2026]),
    ("http-custom-header-server-validation", &[V2026]),
    ("server-sse-polling", &[V2025]),
    ("server-sse-multiple-streams", &[V2025, V2026]),
    ("server-session-lifecycle", &[V2025]),
    ("server-stateless", &[V2026]),
    ("caching", &[V2026]),
    // Everything else the suite (`--suite all`) has for servers.
    ("completion-complete", &[V2025, V2026]),
    ("elicitation-sep1034-defaults", &[V2025]),
    ("elicitation-sep1330-enums", &[V2025]),
    ("input-required-result-basic-elicitation", &[V2026]),
    ("input-required-result-basic-list-roots", &[V2026]),
    ("input-required-result-basic-sampling", &[V2026]),
    ("input-required-result-capability-check", &[V2026]),
    ("input-required-result-ignore-extra-params", &[V2026]),
    ("input-required-result-missing-input-response", &[V2026]),
    ("input-required-result-multi-round", &[V2026]),
    ("input-required-result-multiple-input-requests", &[V2026]),
    ("input-required-result-non-tool-request", &[V2026]),
    ("input-required-result-request-state", &[V2026]),
    ("input-required-result-result-type", &[V2026]),
    ("input-required-result-tampered-state", &[V2026]),
    ("input-required-result-unsupported-methods", &[V2026]),
    ("input-required-result-validate-input", &[V2026]),
    ("json-schema-2020-12", &[V2025, V2026]),
    ("logging-set-level", &[V2025]),
    ("ping", &[V2025]),
    ("prompts-get-embedded-resource", &[V2025, V2026]),
    ("prompts-get-simple", &[V2025, V2026]),
    ("prompts-get-with-args", &[V2025, V2026]),
    ("prompts-get-with-image", &[V2025, V2026]),
    ("prompts-list", &[V2025, V2026]),
    ("resources-list", &[V2025, V2026]),
    ("resources-read-binary", &[V2025, V2026]),
    ("resources-read-text", &[V2025, V2026]),
    ("resources-subscribe", &[V2025]),
    ("resources-templates-read", &[V2025, V2026]),
    ("resources-unsubscribe", &[V2025]),
    ("sep-2164-resource-not-found", &[V2026]),
    ("server-initialize", &[V2025]),
    ("tools-call-audio", &[V2025, V2026]),
    ("tools-call-elicitation", &[V2025]),
    ("tools-call-embedded-resource", &[V2025, V2026]),
    ("tools-call-error", &[V2025, V2026]),
    ("tools-call-image", &[V2025, V2026]),
    ("tools-call-mixed-content", &[V2025, V2026]),
    ("tools-call-sampling", &[V2025]),
    ("tools-call-simple-text", &[V2025, V2026]),
    ("tools-call-with-logging", &[V2025]),
    ("tools-call-with-progress", &[V2025, V2026]),
    ("tools-list", &[V2025, V2026]),
    // The tasks extension (`--suite all`). Not here: tasks-status-notifications
    // (the suite has no checks for it yet).
    ("tasks-capability-negotiation", &[EXT]),
    ("tasks-dispatch-and-envelope", &[EXT]),
    ("tasks-lifecycle", &[EXT]),
    ("tasks-mrtr-input", &[EXT]),
    ("tasks-mrtr-composition", &[EXT]),
    ("tasks-request-headers", &[EXT]),
    ("tasks-request-state-removal", &[EXT]),
    ("tasks-required-task-error", &[EXT]),
    ("tasks-wire-fields", &[EXT]),
];

/// Every client scenario this test runs against `examples/conformance_client`,
/// with the versions it runs at ([`DEFAULT`]: the suite's own choice, the
/// version the scenario was introduced in or 2025-11-25): all 48 of
/// `conformance list --client`, and at both wires those that apply to both.
const CLIENT_SCENARIOS: &[(&str, &[&str])] = &[
    ("initialize", &[DEFAULT]),
    ("tools_call", &[V2025, V2026]),
    ("elicitation-sep1034-client-defaults", &[DEFAULT]),
    ("sse-retry", &[DEFAULT]),
    ("request-metadata", &[DEFAULT]),
    ("sep-2322-client-request-state", &[DEFAULT]),
    ("http-standard-headers", &[DEFAULT]),
    ("http-custom-headers", &[DEFAULT]),
    ("http-invalid-tool-headers", &[DEFAULT]),
    ("json-schema-ref-no-deref", &[DEFAULT]),
    ("json-schema-2020-12-preservation", &[V2025, V2026]),
    ("sep-2640-client-no-prefetch", &[DEFAULT]),
    ("sep-2640-client-verify-digest", &[DEFAULT]),
    ("sep-2640-client-verify-size", &[DEFAULT]),
    ("sep-2640-client-verify-frontmatter", &[DEFAULT]),
    // Authorization: discovery, registration, scopes, token endpoint
    // authentication, issuer checks, and the extensions' grants.
    ("auth/metadata-default", &[V2025, V2026]),
    ("auth/metadata-var1", &[V2025, V2026]),
    ("auth/metadata-var2", &[V2025, V2026]),
    ("auth/metadata-var3", &[V2025, V2026]),
    ("auth/basic-cimd", &[V2025, V2026]),
    ("auth/scope-from-www-authenticate", &[V2025, V2026]),
    ("auth/scope-from-scopes-supported", &[V2025, V2026]),
    ("auth/scope-omitted-when-undefined", &[V2025, V2026]),
    ("auth/scope-step-up", &[V2025, V2026]),
    ("auth/scope-retry-limit", &[V2025, V2026]),
    ("auth/token-endpoint-auth-basic", &[V2025, V2026]),
    ("auth/token-endpoint-auth-post", &[V2025, V2026]),
    ("auth/token-endpoint-auth-none", &[V2025, V2026]),
    ("auth/pre-registration", &[V2025, V2026]),
    ("auth/2025-03-26-oauth-metadata-backcompat", &[DEFAULT]),
    ("auth/2025-03-26-oauth-endpoint-fallback", &[DEFAULT]),
    ("auth/resource-mismatch", &[DEFAULT]),
    ("auth/offline-access-scope", &[DEFAULT]),
    ("auth/offline-access-not-supported", &[DEFAULT]),
    ("auth/authorization-server-migration", &[DEFAULT]),
    ("auth/iss-supported", &[DEFAULT]),
    ("auth/iss-not-advertised", &[DEFAULT]),
    ("auth/iss-supported-missing", &[DEFAULT]),
    ("auth/iss-wrong-issuer", &[DEFAULT]),
    ("auth/iss-unexpected", &[DEFAULT]),
    ("auth/iss-normalized", &[DEFAULT]),
    ("auth/metadata-issuer-mismatch", &[DEFAULT]),
    ("auth/client-credentials-basic", &[DEFAULT]),
    ("auth/enterprise-managed-authorization", &[DEFAULT]),
    ("auth/wif-jwt-bearer", &[DEFAULT]),
    ("auth/client-credentials-jwt", &[DEFAULT]),
    ("auth/dpop", &[DEFAULT]),
    ("auth/dpop-nonce", &[DEFAULT]),
];

/// A client scenario run at the version the suite picks for it.
const DEFAULT: &str = "default";

const EXAMPLE: &str = "conformance_server";
const CLIENT_EXAMPLE: &str = "conformance_client";
/// Per scenario, for the suite's own timeout and for the process.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds an example (a no-op when fresh) and returns its path.
fn build_example(name: &str) -> Result<PathBuf, String> {
    let profile_dir = support::profile_dir();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_owned(),
        Some(name) => name.to_owned(),
        None => return Err(format!("no profile dir in {}", profile_dir.display())),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name, "--profile", &profile])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir());
    let built = run_with_timeout(cmd, Duration::from_secs(1200), "cargo build --example")?;
    if !built.status.success() {
        return Err(format!(
            "cargo build --example {name} failed:\n{}",
            describe(&built)
        ));
    }
    let exe = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if exe.exists() {
        Ok(exe)
    } else {
        Err(format!(
            "cargo built {name} but {} is missing",
            exe.display()
        ))
    }
}

/// The server example's path, built once per test process.
fn example() -> &'static PathBuf {
    static EXE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match EXE.get_or_init(|| build_example(EXAMPLE)) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// The client example's path, built once per test process.
fn client_example() -> &'static PathBuf {
    static EXE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match EXE.get_or_init(|| build_example(CLIENT_EXAMPLE)) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// `conformance server --url URL` or `conformance client --command CMD`,
/// from the installed suite.
fn suite(target: Target<'_>) -> Command {
    let prefix = node_prefix();
    let mut cmd = prefix.node();
    cmd.arg(
        prefix
            .package_dir("@modelcontextprotocol/conformance")
            .join("dist/index.js"),
    );
    match target {
        Target::Server(url) => cmd.args(["server", "--url", url]),
        Target::Client(command) => cmd.args(["client", "--command", command]),
    };
    cmd
}

impl Target<'_> {
    /// Which side of the suite runs.
    fn side(self) -> &'static str {
        match self {
            Target::Server(_) => "server",
            Target::Client(_) => "client",
        }
    }
}

/// What a scenario runs against.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// A server at this URL.
    Server(&'a str),
    /// A client run as this command (the suite appends its URL).
    Client(&'a str),
}

fn start_server() -> Server {
    Server::start(Command::new(example()), EXAMPLE, |urls| !urls.is_empty())
}

/// One scenario's outcome.
struct Outcome {
    scenario: &'static str,
    version: &'static str,
    /// Why it failed, if it did: failed checks, or no checks at all.
    failures: Vec<String>,
    warnings: Vec<String>,
    passed: usize,
    results: PathBuf,
}

fn check_line(check: &Value) -> String {
    let mut line = format!(
        "[{}] {}",
        check["id"].as_str().unwrap_or("?"),
        check["errorMessage"]
            .as_str()
            .or(check["description"].as_str())
            .unwrap_or("")
    );
    if let Some(details) = check.get("details").filter(|d| !d.is_null()) {
        line.push_str(&format!("\n      details: {details}"));
    }
    line
}

/// The `checks.json` the suite wrote under `dir` (an `auth/…` scenario's
/// name makes a directory of its own).
fn find_checks(dir: &std::path::Path) -> Option<PathBuf> {
    let file = dir.join("checks.json");
    if file.exists() {
        return Some(file);
    }
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .find_map(|entry| find_checks(&entry.path()))
}

/// Runs one scenario against `target`.
fn run_scenario(target: Target<'_>, scenario: &'static str, version: &'static str) -> Outcome {
    let side = target.side();
    let results = target_dir()
        .join("conformance-results")
        .join(side)
        .join(version)
        .join(scenario.replace('/', "-"));
    let _ = std::fs::remove_dir_all(&results);
    std::fs::create_dir_all(&results).unwrap();
    let mut cmd = suite(target);
    cmd.args(["--scenario", scenario]);
    if version != EXT && version != DEFAULT {
        cmd.args(["--spec-version", version]);
    }
    cmd.arg("--timeout")
        .arg(SCENARIO_TIMEOUT.as_millis().to_string())
        .arg("--output-dir")
        .arg(&results);
    let mut outcome = Outcome {
        scenario,
        version,
        failures: Vec::new(),
        warnings: Vec::new(),
        passed: 0,
        results: results.clone(),
    };
    let output = match run_with_timeout(cmd, SCENARIO_TIMEOUT + Duration::from_secs(30), scenario) {
        Ok(output) => output,
        Err(e) => {
            outcome.failures.push(e);
            return outcome;
        }
    };
    let checks_file = find_checks(&results);
    let checks: Vec<Value> = match checks_file.as_ref().map(std::fs::read_to_string) {
        Some(Ok(text)) => serde_json::from_str(&text).unwrap_or_default(),
        _ => {
            outcome.failures.push(format!(
                "no checks.json (skipped, or the suite failed to run):\n{}",
                describe(&output)
            ));
            return outcome;
        }
    };
    for check in &checks {
        match (check["status"].as_str(), target) {
            (Some("SUCCESS"), _) => outcome.passed += 1,
            (Some("FAILURE"), _) => outcome.failures.push(check_line(check)),
            // The client runner fails a run on any warning.
            (Some("WARNING"), Target::Client(_)) => outcome.failures.push(check_line(check)),
            (Some("WARNING"), Target::Server(_)) => outcome.warnings.push(check_line(check)),
            _ => {}
        }
    }
    if outcome.passed == 0 && outcome.failures.is_empty() {
        outcome
            .failures
            .push("no check succeeded (all skipped?)".to_owned());
    }
    if !output.status.success() && outcome.failures.is_empty() {
        outcome.failures.push(format!(
            "the suite exited non-zero with no failed check:\n{}",
            describe(&output)
        ));
    }
    outcome
}

/// Runs every scenario listed for `version` against one server, then fails
/// with all that failed.
fn run_version(version: &'static str) {
    let prefix = node_prefix();
    assert_eq!(
        prefix
            .package_version("@modelcontextprotocol/conformance")
            .as_deref(),
        Some(CONFORMANCE_VERSION)
    );
    let server = match std::env::var("ARBOR_CONFORMANCE_URL") {
        Ok(url) => Err(url),
        Err(_) => Ok(start_server()),
    };
    let url = match &server {
        Ok(server) => server.url("http://", "/mcp"),
        Err(url) => url.clone(),
    };
    let outcomes: Vec<Outcome> = SCENARIOS
        .iter()
        .filter(|(_, versions)| versions.contains(&version))
        .map(|(scenario, _)| run_scenario(Target::Server(&url), scenario, version))
        .collect();
    let log = server.as_ref().map(Server::log).unwrap_or_default();
    judge(&outcomes, &format!("{version} against {url}"), &log);
}

/// Prints what ran and fails with every failure.
fn judge(outcomes: &[Outcome], what: &str, log: &str) {
    let mut report = String::new();
    for o in outcomes {
        let verdict = if o.failures.is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        report.push_str(&format!(
            "{verdict:6} {} @ {}: {} passed, {} failed, {} warnings ({})\n",
            o.scenario,
            o.version,
            o.passed,
            o.failures.len(),
            o.warnings.len(),
            o.results.display()
        ));
        for f in &o.failures {
            report.push_str(&format!("    FAILURE {f}\n"));
        }
        for w in &o.warnings {
            report.push_str(&format!("    warning {w}\n"));
        }
    }
    if outcomes.iter().all(|o| o.failures.is_empty()) {
        eprintln!("conformance {what}:\n{report}");
    }
    assert!(
        outcomes.iter().all(|o| o.failures.is_empty()),
        "conformance failures at {what}:\n{report}\n{log}"
    );
}

/// Every client scenario listed, against arbor's client.
#[test]
fn client_conformance() {
    let command = client_example().display().to_string();
    let outcomes: Vec<Outcome> = CLIENT_SCENARIOS
        .iter()
        .flat_map(|(scenario, versions)| versions.iter().map(move |v| (*scenario, *v)))
        .map(|(scenario, version)| run_scenario(Target::Client(&command), scenario, version))
        .collect();
    judge(&outcomes, &format!("client {command}"), "");
}

#[test]
fn conformance_at_2025_11_25() {
    run_version(V2025);
}

#[test]
fn conformance_at_2026_07_28() {
    run_version(V2026);
}

#[test]
fn conformance_of_extensions() {
    run_version(EXT);
}

/// A frozen requirement set (`--requirements REV`): the scenarios a spec
/// revision requires, run the way the suite runs them (several at once),
/// judged by the suite's own total: nothing failed, nothing warned.
fn run_requirements(target: Target<'_>, revision: &str) {
    let side = target.side();
    let results = target_dir()
        .join("conformance-results")
        .join("requirements")
        .join(side)
        .join(revision);
    let _ = std::fs::remove_dir_all(&results);
    std::fs::create_dir_all(&results).unwrap();
    let mut cmd = suite(target);
    cmd.args(["--requirements", revision, "--output-dir"])
        .arg(&results);
    let output =
        run_with_timeout(cmd, Duration::from_secs(900), "conformance --requirements").unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let total = text
        .lines()
        .find(|l| l.trim_start().starts_with("Total:"))
        .unwrap_or_else(|| panic!("no total in the output:\n{}", describe(&output)));
    let clean = total.contains(" 0 failed") && !total.contains(" warnings")
        || total.contains(", 0 warnings");
    assert!(
        output.status.success() && clean && total.contains(" 0 failed"),
        "{side} requirements {revision}: {total}\n{}",
        describe(&output)
    );
    eprintln!("{side} requirements {revision}: {total}");
}

#[test]
fn server_requirements() {
    let server = start_server();
    let url = server.url("http://", "/mcp");
    for revision in [V2025, V2026] {
        run_requirements(Target::Server(&url), revision);
    }
}

#[test]
fn client_requirements() {
    let command = client_example().display().to_string();
    for revision in [V2025, V2026] {
        run_requirements(Target::Client(&command), revision);
    }
}

/// The client list is the suite's whole list: nothing passes by not running.
#[test]
fn every_client_scenario_of_the_suite_is_listed() {
    let prefix = node_prefix();
    let mut cmd = prefix.node();
    cmd.arg(
        prefix
            .package_dir("@modelcontextprotocol/conformance")
            .join("dist/index.js"),
    )
    .args(["list", "--client"]);
    let listed = run_with_timeout(cmd, Duration::from_secs(60), "conformance list").unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    let mut suite: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut ours: Vec<&str> = CLIENT_SCENARIOS.iter().map(|(s, _)| *s).collect();
    suite.sort_unstable();
    ours.sort_unstable();
    assert_eq!(suite.len(), 48, "{text}");
    assert_eq!(ours, suite);
}

#[test]
fn every_listed_scenario_runs_somewhere() {
    for (scenario, versions) in SCENARIOS {
        assert!(!versions.is_empty(), "{scenario} runs at no version");
        for v in *versions {
            assert!(
                [V2025, V2026, EXT].contains(v),
                "{scenario}: unknown version {v}"
            );
        }
    }
    for (scenario, versions) in CLIENT_SCENARIOS {
        assert!(!versions.is_empty(), "client {scenario} runs at no version");
        for v in *versions {
            assert!(
                [V2025, V2026, DEFAULT].contains(v),
                "client {scenario}: unknown version {v}"
            );
        }
    }
}
