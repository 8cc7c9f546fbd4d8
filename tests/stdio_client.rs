//! arbor's client over stdio, against `arbor serve --stdio` spawned by the
//! client: the server process killed mid-call fails the call in flight at
//! once (never a hang), and the next call spawns a new server.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use arbor::mcp::client::{Client, ClientError, Reconnect};
use arbor::transports::client::StdioConnector;
use serde_json::json;

const ARBOR: &str = env!("CARGO_BIN_EXE_arbor");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_stdio_server_fails_the_call_in_flight_and_is_spawned_again() {
    let pids = std::env::temp_dir().join(format!("arbor-stdio-client-{}.pids", std::process::id()));
    let _ = std::fs::remove_file(&pids);
    // Each spawn writes its pid, then becomes the server.
    let connector = StdioConnector::new(
        "sh",
        [
            "-c".to_string(),
            r#"echo $$ >> "$0"; exec "$1" serve --stdio"#.to_string(),
            pids.display().to_string(),
            ARBOR.to_string(),
        ],
    );
    let client = Client::builder()
        .request_timeout(Duration::from_secs(20))
        .reconnect(Reconnect {
            enabled: true,
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        })
        .connect(connector)
        .await
        .unwrap();
    let first = std::fs::read_to_string(&pids).unwrap();
    let first: Vec<&str> = first.lines().collect();
    assert_eq!(first.len(), 1, "{first:?}");
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call_tool("count", json!({"steps": 100, "step_ms": 100}))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = std::process::Command::new("kill")
        .args(["-9", first[0]])
        .status()
        .unwrap();
    assert!(killed.success());
    let outcome = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the in-flight call hung")
        .unwrap();
    assert!(
        matches!(outcome, Err(ClientError::Disconnected(_))),
        "{outcome:?}"
    );
    // The next call finds a new server process.
    let mut answered = None;
    for _ in 0..100 {
        match client.call_tool("echo", json!({"message": "again"})).await {
            Ok(answer) => {
                answered = Some(answer);
                break;
            }
            Err(ClientError::Disconnected(_) | ClientError::Transport(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    let answered = answered.expect("never spawned again");
    assert_eq!(answered.content[0].as_text(), Some("again"));
    let spawned = std::fs::read_to_string(&pids).unwrap();
    assert_eq!(spawned.lines().count(), 2, "{spawned}");
    client.close().await;
    let _ = std::fs::remove_file(&pids);
}
