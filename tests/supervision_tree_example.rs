//! Runs `examples/supervision_tree.rs` and checks what it reports.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::process::Command;

use serde_json::Value;

#[test]
fn the_supervision_tree_example_survives_its_kills_and_reports_them_as_json() {
    let output = Command::new(support::example_binary("supervision_tree"))
        .output()
        .expect("the example is built by cargo test");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "example failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find =
        |name: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == name).collect() };

    let tree = find("tree");
    assert_eq!(tree[0]["registered"], 6);
    let paths: Vec<&str> = tree[0]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(&paths[..3], ["registry", "workers", "workers/shard-0"]);
    assert!(paths.contains(&"services/echo"));
    assert_eq!(
        paths.len(),
        3 + 2 + 6 + 2,
        "three levels, every process listed"
    );

    let restarted = find("restarted");
    assert_eq!(restarted[0]["answers"], "echo");
    assert_eq!(restarted[0]["clock_untouched"], true);
    assert_ne!(restarted[0]["old"], restarted[0]["new"]);

    let rereg = find("reregistered");
    assert!(rereg[0]["name"].as_str().unwrap().starts_with("worker-"));
    assert_eq!(rereg[0]["registered"], 6);

    let rest = find("rest_for_one");
    assert_eq!(
        rest[0]["registered"], 0,
        "the restarted registry starts empty"
    );
    assert_eq!(find("workers_started_again")[0]["registered"], 6);

    let rate = find("kill_at_rate");
    assert!(rate[0]["kills"].as_u64().unwrap() >= 2);
    assert_eq!(rate[0]["services_active"], 2);
    assert_eq!(rate[0]["root_alive"], true);

    assert_eq!(find("kill").len(), 3);
    assert_eq!(find("shutdown")[0]["reason"], "shutdown");

    // The supervisors' own events are JSON lines too.
    let exits = find("child_exited");
    assert!(exits
        .iter()
        .any(|e| e["child"] == "echo" && e["reason"] == "killed"));
    assert!(find("child_started").len() >= 13);
    assert!(find("child_terminated")
        .iter()
        .any(|e| e["child"] == "services"));
}
