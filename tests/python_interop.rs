//! Interop with the official Python MCP SDK (PyPI `mcp` 2.3.0): its client
//! drives `arbor serve --stdio` in both protocol eras, through
//! `tests/python/interop.py`, and this test checks the summary it prints.
//! (tests/http_interop.rs drives the same script over Streamable HTTP.)
//!
//! The SDK lives in a venv at `<target dir>/py-mcp`, made on first use with
//! `python3 -m venv` and `pip install mcp==2.3.0` (PyPI access needed once).
//! Without python3 or pip the test fails: it does not skip.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{
    check_python_features, check_python_handshake, check_python_modern, python, run_summary,
    sdk_python, PY_SCRIPT,
};

const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the interop script for `era` and returns its summary.
fn drive(era: &str) -> Value {
    let mut cmd: Command = python(sdk_python());
    cmd.arg(PY_SCRIPT).arg(ARBOR).arg(era);
    run_summary(cmd, RUN_TIMEOUT, &format!("interop.py {era}"), &String::new)
}

#[test]
fn the_python_sdk_drives_arbor_in_the_2026_07_28_era() {
    let s = drive("modern");
    assert_eq!(s["transport"], "stdio");
    check_python_modern(&s);
    check_python_features(&s);
}

#[test]
fn the_python_sdk_drives_arbor_in_the_handshake_era() {
    let s = drive("handshake");
    assert_eq!(s["transport"], "stdio");
    check_python_handshake(&s);
    check_python_features(&s);
}
