//! stdio under supervision (`StdioTree`): the session is a child of its own
//! tree, which ends with it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use arbor_mcp::{CallToolResult, ServerBuilder, Tool};
use arbor_runtime::{spawn, Actor, Context, ExitReason, Flow};
use arbor_supervision::ChildSpec;
use arbor_transports::StdioTree;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct Idle;
impl Actor for Idle {
    type Msg = ();
    async fn handle(&mut self, _: (), _: &mut Context<Self>) -> Flow {
        Ok(())
    }
}

fn server() -> arbor_mcp::McpServer {
    ServerBuilder::new("stdio", "1")
        .tool(Tool::new("hi"), |(), _ctx| async move {
            Ok(CallToolResult::text("hi"))
        })
        .build()
        .unwrap()
}

/// A session killed under the tree (as the chaos hooks do) ends the tree,
/// with the kill as its reason and a last line telling the client why; a
/// child of the caller's runs beside it and stops with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_session_ends_its_tree_and_says_why() {
    let (client, ours) = tokio::io::duplex(64 << 10);
    let (read, write) = tokio::io::split(ours);
    let (client_read, mut client_write) = tokio::io::split(client);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let started_tx = std::sync::Arc::new(parking_lot::Mutex::new(Some(started_tx)));
    let helper = ChildSpec::worker("helper", move || {
        let started_tx = started_tx.clone();
        async move {
            let helper = spawn(Idle).await?;
            if let Some(tx) = started_tx.lock().take() {
                let _ = tx.send(helper.process());
            }
            Ok::<_, arbor_runtime::SpawnError>(helper)
        }
    });
    let tree = StdioTree::over(server(), BufReader::new(read), write).child(helper);
    let serving = tree.start().await.unwrap();
    let supervisor = serving.tree().clone();
    let running = tokio::spawn(serving.wait());
    let helper = started_rx.await.unwrap();
    let mut lines = BufReader::new(client_read).lines();
    client_write
        .write_all(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}
"#)
        .await
        .unwrap();
    let answer = lines.next_line().await.unwrap().unwrap();
    assert!(answer.contains("\"protocolVersion\""), "{answer}");
    let killed = arbor_supervision::kill_path(&supervisor, "session")
        .await
        .unwrap();
    assert_eq!(killed.path, "session");
    let reason = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the tree ends with its session")
        .unwrap();
    assert_eq!(reason, ExitReason::Killed);
    let last = lines.next_line().await.unwrap().unwrap_or_default();
    assert!(last.contains("notifications/message"), "{last}");
    assert!(
        !helper.is_alive(),
        "the caller's child stopped with the tree"
    );
}
