//! arbor's client against arbor's server over an in-memory pipe, in both
//! eras: negotiation, every typed method, input rounds answered by the
//! client's handlers, progress, timeouts, and the connection's end.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use arbor_mcp::client::{
    Client, ClientError, ElicitModes, LineConnector, RequestOptions, VersionChoice,
};
use arbor_mcp::model::params::{CompleteArgument, CompleteParams, CompleteReference};
use arbor_mcp::model::{CreateMessageResult, ElicitAction, ElicitResult, Role, Root};
use arbor_mcp::transport::connect_in_memory;
use arbor_mcp::{Content, Era, McpServer, ProtocolVersion};
use serde_json::json;

fn connector(
    server: McpServer,
) -> LineConnector<
    impl Fn() -> std::future::Ready<std::io::Result<arbor_mcp::client::LineStreams>>
        + Send
        + Sync
        + 'static,
> {
    LineConnector::once(move || {
        let (read, write) = tokio::io::split(connect_in_memory(server.clone()));
        std::future::ready(Ok((Box::new(read) as _, Box::new(write) as _)))
    })
}

async fn client(version: VersionChoice) -> Client {
    Client::builder()
        .name("test-client", "0.1")
        .version(version)
        .request_timeout(Duration::from_secs(10))
        .elicitation(ElicitModes::FormAndUrl, |_params| async {
            Ok(ElicitResult {
                action: ElicitAction::Accept,
                content: Some(serde_json::Map::new()),
            })
        })
        .sampling(|params| async move {
            Ok(CreateMessageResult {
                role: Role::Assistant,
                content: Content::text(format!("{} messages seen", params.messages.len())),
                model: "test-model".into(),
                stop_reason: None,
            })
        })
        .roots(vec![Root {
            uri: "file:///tmp".into(),
            name: None,
        }])
        .connect(connector(common::server()))
        .await
        .unwrap()
}

const BOTH: [VersionChoice; 2] = [
    VersionChoice::Auto,
    VersionChoice::Pinned(ProtocolVersion::V2025_11_25),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_speaks_2026_and_a_pin_speaks_the_handshake() {
    let modern = client(VersionChoice::Auto).await;
    assert_eq!(
        modern.protocol_version(),
        Some(ProtocolVersion::V2026_07_28)
    );
    let session = modern.session().unwrap();
    assert_eq!(
        session.server_info.as_ref().map(|i| i.name.as_str()),
        Some("test-server")
    );
    assert!(session.offers("tools"));
    let old = client(VersionChoice::Pinned(ProtocolVersion::V2025_06_18)).await;
    assert_eq!(old.protocol_version(), Some(ProtocolVersion::V2025_06_18));
    assert_eq!(
        old.session().unwrap().instructions.as_deref(),
        Some("for tests")
    );
    modern.close().await;
    old.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_feature_in_both_eras() {
    for version in BOTH {
        let c = client(version).await;
        let era = c.protocol_version().unwrap().era();
        // Five per page: the helper follows the cursors.
        let first = c.list_tools(None).await.unwrap();
        assert_eq!(first.tools.len(), 5, "{era:?}");
        assert!(first.next_cursor.is_some());
        let tools = c.list_all_tools().await.unwrap();
        assert!(
            tools.len() > 10 && tools.iter().any(|t| t.name == "summarize"),
            "{era:?}"
        );

        let sum = c.call_tool("add", json!({"a": 2, "b": 40})).await.unwrap();
        assert_eq!(sum.content[0].as_text(), Some("42"));
        let failed = c.call_tool("fail", json!({"ms": 0})).await.unwrap();
        assert!(failed.is_error);
        let unknown = c.call_tool("nope", json!({})).await.unwrap_err();
        assert!(unknown.server_error().is_some(), "{unknown:?}");

        let read = c.read_resource("test://static/hello").await.unwrap();
        assert_eq!(
            serde_json::to_value(&read.contents[0]).unwrap()["text"],
            "hello world"
        );
        let missing = c.read_resource("test://nothing").await.unwrap_err();
        // 2026-07-28 made an unknown resource invalid params.
        let not_found = if era == Era::Modern { -32602 } else { -32002 };
        assert_eq!(missing.server_error().map(|e| e.code), Some(not_found));
        let templates = c.list_all_resource_templates().await.unwrap();
        assert_eq!(
            templates[0].uri_template.as_str(),
            "test://users/{id}/profile"
        );
        assert_eq!(c.list_all_resources().await.unwrap().len(), 1);

        let prompts = c.list_all_prompts().await.unwrap();
        assert!(prompts.iter().any(|p| p.name == "greet"));
        let args = HashMap::from([("name".to_string(), "Ada".to_string())]);
        let greeting = c.get_prompt("greet", args).await.unwrap();
        assert_eq!(greeting.messages[0].content.as_text(), Some("Hello, Ada!"));

        let completed = c
            .complete(CompleteParams {
                reference: CompleteReference::Prompt {
                    name: "greet".into(),
                },
                argument: CompleteArgument {
                    name: "name".into(),
                    value: "A".into(),
                },
                context: None,
            })
            .await
            .unwrap();
        assert_eq!(completed.completion.values, vec!["Ada", "Alan"]);
        c.ping().await.unwrap();
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_handlers_answer_input_in_both_eras() {
    for version in BOTH {
        let c = client(version).await;
        let confirmed = c.call_tool("confirm", json!({"ms": 1})).await.unwrap();
        // The state kept with the question comes back with the answer
        // (2026-07-28: sealed in requestState, echoed by the client).
        assert_eq!(
            confirmed.content[0].as_text(),
            Some("accept at step 1"),
            "{version:?}"
        );
        let two = c.call_tool("two", json!({"ms": 1})).await.unwrap();
        assert_eq!(two.content[0].as_text(), Some("\"accept\" \"accept\""));
        let sampled = c.call_tool("summarize", json!({"ms": 1})).await.unwrap();
        assert_eq!(sampled.content[0].as_text(), Some("1 messages seen"));
        let visited = c.call_tool("visit", json!({"ms": 1})).await.unwrap();
        assert_eq!(visited.content[0].as_text(), Some("accept"));
        let picked = c.get_prompt("pick", HashMap::new()).await.unwrap();
        assert_eq!(picked.messages[0].content.as_text(), Some("1 roots"));
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_caller_and_a_timeout_resolves_once() {
    for version in BOTH {
        let c = client(version).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let options = RequestOptions {
            timeout: None,
            progress: Some(tx),
            ..RequestOptions::default()
        };
        let done = c
            .call_tool_with("slow", json!({"ms": 40}), options)
            .await
            .unwrap();
        assert_eq!(done.content[0].as_text(), Some("done"));
        let mut seen = Vec::new();
        while let Ok(p) = rx.try_recv() {
            seen.push(p.progress);
        }
        // The server may coalesce reports; what arrives grows to the end.
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "{version:?}: {seen:?}"
        );
        assert_eq!(seen.last(), Some(&4.0), "{version:?}");

        let options = RequestOptions {
            timeout: Some(Duration::from_millis(50)),
            ..RequestOptions::default()
        };
        let late = c.call_tool_with("slow", json!({"ms": 2000}), options).await;
        assert_eq!(
            late.unwrap_err(),
            ClientError::Timeout(Duration::from_millis(50))
        );
        // The connection is still good, and the late answer (if the server
        // sends one despite the cancellation) is dropped.
        let sum = c.call_tool("add", json!({"a": 1, "b": 1})).await.unwrap();
        assert_eq!(sum.content[0].as_text(), Some("2"));
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_fails_what_is_in_flight_and_later_calls() {
    let c = client(VersionChoice::Auto).await;
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { c.call_tool("slow", json!({"ms": 5000})).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.close().await;
    let outcome = tokio::time::timeout(Duration::from_secs(2), slow)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, Err(ClientError::Disconnected(_))),
        "{outcome:?}"
    );
    let after = c.ping().await.unwrap_err();
    assert_eq!(after, ClientError::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_old_version_is_spoken_and_batches_stay_off() {
    let pinned = Client::builder()
        .version(VersionChoice::Pinned(ProtocolVersion::V2024_11_05))
        .connect(connector(common::server()))
        .await
        .unwrap();
    assert_eq!(
        pinned.protocol_version(),
        Some(ProtocolVersion::V2024_11_05)
    );
    let sum = pinned
        .call_tool("add", json!({"a": 3, "b": 4}))
        .await
        .unwrap();
    assert_eq!(sum.content[0].as_text(), Some("7"));
    pinned.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_lists_are_reused_until_a_listen_says_they_changed() {
    use arbor_mcp::cache::{CacheHint, CacheScope, ListCaching};
    use arbor_mcp::model::params::ListenFilter;
    let minute = CacheHint {
        ttl: Duration::from_secs(60),
        scope: CacheScope::Private,
    };
    let server = common::server_with(arbor_mcp::ServerConfig {
        page_size: 5,
        list_caching: ListCaching {
            tools: minute,
            ..ListCaching::default()
        },
        ..arbor_mcp::ServerConfig::default()
    });
    let c = Client::builder()
        .connect(connector(server.clone()))
        .await
        .unwrap();
    let before = c.list_all_tools().await.unwrap().len();
    let added = |name: &'static str| {
        server
            .add_tool(
                arbor_mcp::Tool::new(name).description("added"),
                |(), _ctx| async { Ok(arbor_mcp::CallToolResult::text("new")) },
            )
            .unwrap();
    };
    // Fresh for a minute: the new tool is not seen, no request is made.
    added("late-1");
    assert_eq!(c.list_all_tools().await.unwrap().len(), before);
    // A listen hears the change, which makes the cached pages stale.
    let mut listen = c
        .listen(ListenFilter {
            tools_list_changed: true,
            ..ListenFilter::default()
        })
        .await
        .unwrap();
    // The listen is acknowledged first; then the change arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    added("late-2");
    let changed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match listen.next().await {
                Some(n) if n.method == "notifications/tools/list_changed" => return true,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await;
    assert_eq!(changed, Ok(true));
    assert_eq!(c.list_all_tools().await.unwrap().len(), before + 2);
    listen.close();
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_that_becomes_a_task_after_input_answers_a_client_without_tasks() {
    use arbor_mcp::input::InputRequired;
    use arbor_mcp::{CallToolResult, ServerBuilder, Tool, ToolError};
    let server = ServerBuilder::new("escalating", "1")
        .tool(
            Tool::new("ask_then_work")
                .task_support(arbor_mcp::TaskSupport::Optional)
                .task_after_input(),
            |(), ctx| async move {
                match ctx.input::<ElicitResult>("ok") {
                    None => Err(ToolError::input_required(InputRequired::new().elicit(
                        "ok",
                        "Go?",
                        json!({"type": "object", "properties": {}}),
                    ))),
                    Some(_) if !ctx.in_task() => Err(ToolError::RunAsTask),
                    Some(_) => Ok(CallToolResult::text("worked in a task context")),
                }
            },
        )
        .build()
        .unwrap();
    for version in BOTH {
        let c = Client::builder()
            .version(version)
            .elicitation(ElicitModes::Form, |_| async {
                Ok(ElicitResult {
                    action: ElicitAction::Accept,
                    content: None,
                })
            })
            .connect(connector(server.clone()))
            .await
            .unwrap();
        // No tasks declared: the handler runs on, and the call answers.
        let done = c.call_tool("ask_then_work", json!({})).await.unwrap();
        assert_eq!(
            done.content[0].as_text(),
            Some("worked in a task context"),
            "{version:?}"
        );
        c.close().await;
    }
}

/// A scripted server on the other end of a pipe, dialled once (a redial
/// fails): answers `initialize` with a line padded to `first` bytes, then
/// the next request with one padded to `second` bytes (`0`: hangs up).
fn scripted(first: usize, second: usize) -> impl arbor_mcp::client::Connector {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let pipes = std::sync::Mutex::new(Some(tokio::io::duplex(1 << 20)));
    LineConnector::new(move || {
        let Some((client_end, server_end)) = pipes.lock().unwrap().take() else {
            return std::future::ready(Err(std::io::Error::other("the server is gone")));
        };
        tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(server_end);
            let mut lines = BufReader::new(read).lines();
            let pad = |id: serde_json::Value, result: serde_json::Value, len: usize| {
                let mut line = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
                line.push_str(&" ".repeat(len.saturating_sub(line.len())));
                line.push('\n');
                line
            };
            let mut answered = 0;
            while let Ok(Some(line)) = lines.next_line().await {
                let message: serde_json::Value = serde_json::from_str(&line).unwrap();
                if answered == 1 && second == 0 {
                    return; // hang up once initialized
                }
                let Some(id) = message.get("id").cloned() else { continue };
                let (result, len) = match answered {
                    0 => (
                        json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "s", "version": "1"}}),
                        first,
                    ),
                    _ => (json!({"tools": []}), second),
                };
                answered += 1;
                if write.write_all(pad(id, result, len).as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let (read, write) = tokio::io::split(client_end);
        std::future::ready(Ok((Box::new(read) as _, Box::new(write) as _)))
    })
    .max_line(1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_at_the_limit_is_taken_and_one_past_it_ends_the_connection() {
    let pinned = VersionChoice::Pinned(ProtocolVersion::V2025_11_25);
    // Exactly 1000 bytes before the newline: taken.
    let c = Client::builder()
        .version(pinned)
        .connect(scripted(1000, 1000))
        .await
        .unwrap();
    assert!(c.list_tools(None).await.unwrap().tools.is_empty());
    c.close().await;
    // 1001: the connection ends, and the request on it fails, naming why.
    let c = Client::builder()
        .version(pinned)
        .connect(scripted(1000, 1001))
        .await
        .unwrap();
    match c.list_tools(None).await {
        Err(ClientError::Disconnected(why)) => assert!(why.contains("over 1000 bytes"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_queue_limit_fail_at_once_while_the_connection_is_down() {
    use arbor_mcp::client::ClientConfig;
    let config = ClientConfig {
        max_queued: 2,
        request_timeout: Duration::from_millis(800),
        version: VersionChoice::Pinned(ProtocolVersion::V2025_11_25),
        ..ClientConfig::default()
    };
    // The server hangs up after initialize; every redial then fails, so
    // requests wait in the queue.
    let c = Client::builder()
        .config(config)
        .connect(scripted(200, 0))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued: Vec<_> = (0..2)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.ping().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let third = tokio::time::timeout(Duration::from_millis(200), c.ping()).await;
    match third {
        Ok(Err(ClientError::Transport(why))) => {
            assert!(why.contains("2 requests already wait"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // The two in the queue end by their timeout, not never.
    for waiting in queued {
        let outcome = waiting.await.unwrap();
        assert_eq!(
            outcome,
            Err(ClientError::Timeout(Duration::from_millis(800)))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_run_as_tasks_are_followed_answered_failed_and_cancelled_in_both_eras() {
    use arbor_mcp::client::ToolCall;
    use arbor_mcp::model::TaskState;
    for version in BOTH {
        // A tool that runs only as a task, called plainly by a client that
        // has not listed the tools: the client finds out and follows it.
        let c = client(version).await;
        let done = c.call_tool("long", json!({"ms": 50})).await.unwrap();
        assert_eq!(done.content[0].as_text(), Some("slept 50"), "{version:?}");

        // Started as a task, polled, then cancelled: waiting says so.
        let ToolCall::Task(mut task) = c
            .call_tool_as_task("long", json!({"ms": 5000}))
            .await
            .unwrap()
        else {
            panic!("{version:?}: `long` did not start a task");
        };
        assert_eq!(task.status().await.unwrap().status, TaskState::Working);
        task.cancel().await.unwrap();
        assert_eq!(
            task.status().await.unwrap().status,
            TaskState::Cancelled,
            "{version:?}"
        );
        assert_eq!(task.wait().await.unwrap_err(), ClientError::Cancelled);

        // A task that asks two questions: the handlers answer them (2026:
        // through tasks/update; handshake: the server's own requests).
        let ToolCall::Task(task) = c.call_tool_as_task("two", json!({"ms": 0})).await.unwrap()
        else {
            panic!("{version:?}: `two` did not start a task");
        };
        let answered = task.wait().await.unwrap();
        assert_eq!(
            answered.content[0].as_text(),
            Some("\"accept\" \"accept\""),
            "{version:?}"
        );

        // A task whose handler panics fails with the server's error.
        let ToolCall::Task(task) = c
            .call_tool_as_task("panic", json!({"ms": 0}))
            .await
            .unwrap()
        else {
            panic!("{version:?}: `panic` did not start a task");
        };
        let failed = task.wait().await.unwrap_err();
        assert_eq!(
            failed.server_error().map(|e| e.code),
            Some(-32603),
            "{version:?}: {failed}"
        );

        // Listed as never a task: called plainly, answered at once.
        c.list_all_tools().await.unwrap();
        match c
            .call_tool_as_task("add", json!({"a": 1, "b": 2}))
            .await
            .unwrap()
        {
            ToolCall::Finished(r) => assert_eq!(r.content[0].as_text(), Some("3")),
            ToolCall::Task(t) => panic!("{version:?}: `add` became task {}", t.id()),
        }
        c.close().await;
    }
}
