//! Streamable HTTP, handshake era (2025-03-26 to 2025-11-25): sessions,
//! the standalone GET stream, priming, resumption with `Last-Event-ID`,
//! polling, idle sessions and keep-alive comments.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod http_support;

use arbor_mcp::Tool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbor_mcp::{CallToolResult, ListKind, ServerBuilder};
use arbor_supervision::SupervisorRef;
use arbor_transports::http::HttpConfig;
use http_support::*;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

async fn started() -> (SupervisorRef, std::net::SocketAddr) {
    start_http(builder().build().unwrap(), HttpConfig::default()).await
}

fn call(id: Value, tool: &str, token: Option<&str>) -> Value {
    let mut params = json!({"name": tool, "arguments": {}});
    if let Some(token) = token {
        params["_meta"] = json!({"progressToken": token});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

fn tools_list(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
}

/// How many HTTP session processes run.
async fn sessions(tree: &SupervisorRef) -> usize {
    arbor_supervision::descendants(tree)
        .await
        .unwrap()
        .iter()
        .filter(|d| {
            d.path
                .rsplit('/')
                .next()
                .is_some_and(|last| last.starts_with("http-session-"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_opens_a_session_with_a_random_32_hex_id() {
    let (tree, addr) = started().await;
    let (a, head, events) = Session::initialize(addr, "2025-06-18").await;
    assert!(head.is_sse(), "{head:?}");
    assert_eq!(a.id.len(), 32, "{}", a.id);
    assert!(
        a.id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{}",
        a.id
    );
    let answer = events.last().unwrap().json();
    assert_eq!(answer["id"], 0);
    assert_eq!(answer["result"]["protocolVersion"], "2025-06-18");
    let (b, _, _) = Session::initialize(addr, "2025-06-18").await;
    assert_ne!(a.id, b.id, "each session has its own id");
    assert_eq!(sessions(&tree).await, 2);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_11_25_stream_opens_with_a_priming_event() {
    let (tree, addr) = started().await;
    let (_, _, events) = Session::initialize(addr, "2025-11-25").await;
    assert_eq!(events.len(), 2, "{events:?}");
    let priming = &events[0];
    assert!(priming.id.as_deref().is_some_and(|id| !id.is_empty()));
    assert_eq!(priming.data.as_deref(), Some(""), "{priming:?}");
    assert_eq!(events[1].json()["result"]["protocolVersion"], "2025-11-25");
    assert!(
        events[1].id.is_some(),
        "events are resumable: they have ids"
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_03_26_stream_has_no_priming_event() {
    let (tree, addr) = started().await;
    let (_, _, events) = Session::initialize(addr, "2025-03-26").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].json()["result"]["protocolVersion"], "2025-03-26");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initialized_notification_is_accepted_202() {
    let (tree, addr) = started().await;
    let (session, _, _) = Session::initialize(addr, "2025-11-25").await;
    let r = session
        .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    assert_eq!(r.status(), 202);
    assert!(r.body.is_empty());
    // The session is ready: requests are served on their own streams.
    let mut sse = session.open_post(&tools_list(1)).await;
    let (_, answer) = sse.message().await.unwrap();
    assert_eq!(answer["id"], 1);
    assert!(answer["result"]["tools"].is_array(), "{answer}");
    assert!(
        sse.next().await.is_none(),
        "the stream ends with its answer"
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_session_id_is_400() {
    let (tree, addr) = started().await;
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[("MCP-Protocol-Version", "2025-11-25")]),
        tools_list(1).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.head.get("mcp-session-id").is_none());
    assert_eq!(sessions(&tree).await, 0, "no session was opened");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_is_404_session_not_found() {
    let (tree, addr) = started().await;
    let unknown = "00000000000000000000000000000000";
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[
            ("Mcp-Session-Id", unknown),
            ("MCP-Protocol-Version", "2025-11-25"),
        ]),
        tools_list(1).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json()["error"]["code"], -32001);
    let r = exchange(
        addr,
        "GET",
        "/mcp",
        &[("Accept", "text/event-stream"), ("Mcp-Session-Id", unknown)],
        b"",
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json()["error"]["code"], -32001);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_protocol_version_header_is_400() {
    let (tree, addr) = started().await;
    let session = Session::ready(addr, "2025-11-25").await;
    let r = exchange(
        addr,
        "POST",
        "/mcp",
        &post_headers(&[
            ("Mcp-Session-Id", &session.id),
            ("MCP-Protocol-Version", "1999-01-01"),
        ]),
        tools_list(1).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json()["error"]["data"]["requested"], "1999-01-01");
    // GET and DELETE too (and the session is still there afterwards).
    for method in ["GET", "DELETE"] {
        let headers = [
            ("Accept", "text/event-stream"),
            ("Mcp-Session-Id", session.id.as_str()),
            ("MCP-Protocol-Version", "not-a-version"),
        ];
        let r = exchange(addr, method, "/mcp", &headers, b"").await;
        assert_eq!(r.status(), 400, "{method}");
        assert_eq!(r.json()["error"]["data"]["requested"], "not-a-version");
    }
    // The supported header is served.
    let mut sse = session.open_post(&tools_list(2)).await;
    assert_eq!(sse.message().await.unwrap().1["id"], 2);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_the_session_and_its_id_is_then_404() {
    let (tree, addr) = started().await;
    let session = Session::ready(addr, "2025-11-25").await;
    let headers = [
        ("Mcp-Session-Id", session.id.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let r = exchange(addr, "DELETE", "/mcp", &headers, b"").await;
    assert_eq!(r.status(), 200);
    let r = exchange(addr, "DELETE", "/mcp", &headers, b"").await;
    assert_eq!(r.status(), 404);
    let r = session.post(&tools_list(1)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json()["error"]["code"], -32001);
    eventually(Duration::from_secs(2), "the session process ends", || {
        let tree = tree.clone();
        async move { sessions(&tree).await == 0 }
    })
    .await;
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_get_stream_carries_unrelated_notifications() {
    let server = builder().build().unwrap();
    let (tree, addr) = start_http(server.clone(), HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut get = session.get_stream(None).await;
    // The session follows list changes once `notifications/initialized`
    // has reached it.
    let s = server.clone();
    eventually(Duration::from_secs(2), "the session is told", move || {
        let s = s.clone();
        async move { s.list_changed(ListKind::Tools) > 0 }
    })
    .await;
    let (event, n) = get.message().await.unwrap();
    assert_eq!(n["method"], "notifications/tools/list_changed");
    assert!(event.id.is_some(), "{event:?}");
    drop(get);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_standalone_get_is_409() {
    let (tree, addr) = started().await;
    let session = Session::ready(addr, "2025-11-25").await;
    let first = session.get_stream(None).await;
    let (head, mut conn) = session.get(None).await;
    assert_eq!(head.status, 409);
    let refusal: Value = serde_json::from_slice(&conn.body(&head).await).unwrap();
    assert!(refusal["error"].is_object(), "{refusal}");
    // Once the first has gone, a GET is served again.
    drop(first);
    eventually(Duration::from_secs(2), "a new GET is served", || {
        let session = session.clone();
        async move { session.get(None).await.0.status == 200 }
    })
    .await;
    tree.shutdown().await;
}

/// A client that closes its standalone stream and opens another at once
/// is served, though the end of its old connection is noticed a moment
/// after the new GET arrives (under load that answered 409 about one time
/// in five): here the old stream goes while the new GET is already waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_get_reopened_at_once_is_served() {
    let (tree, addr) = started().await;
    let session = Session::ready(addr, "2025-11-25").await;
    let old = session.get_stream(None).await;
    let reopening = {
        let session = session.clone();
        tokio::spawn(async move { session.get(None).await.0.status })
    };
    tokio::time::sleep(Duration::from_millis(60)).await;
    drop(old);
    assert_eq!(reopening.await.unwrap(), 200);
    tree.shutdown().await;
}

/// A tool that reports progress 1 to 3, waits for a permit, reports 4,
/// waits for another, reports 5 and answers.
fn stepper(permits: Arc<Semaphore>, four_sent: Arc<AtomicBool>) -> ServerBuilder {
    builder().tool_with_schema(
        Tool::new("stepper")
            .description("Reports progress in steps")
            .input_schema(json!({"type": "object"})),
        move |_args, ctx| {
            let (permits, four_sent) = (permits.clone(), four_sent.clone());
            async move {
                for i in 1..=3 {
                    assert!(ctx.progress(f64::from(i), None, None));
                }
                permits.acquire().await.unwrap().forget();
                assert!(ctx.progress(4.0, None, None));
                four_sent.store(true, Ordering::SeqCst);
                permits.acquire().await.unwrap().forget();
                assert!(ctx.progress(5.0, None, None));
                Ok(CallToolResult::text("finished"))
            }
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_stream_resumes_with_exactly_the_missed_events() {
    let permits = Arc::new(Semaphore::new(0));
    let four_sent = Arc::new(AtomicBool::new(false));
    let server = stepper(permits.clone(), four_sent.clone()).build().unwrap();
    let (tree, addr) = start_http(server, HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;

    let mut post = session
        .open_post(&call(json!(7), "stepper", Some("s")))
        .await;
    let priming = post.next().await.unwrap();
    assert!(priming.is_priming(), "{priming:?}");
    let (seen, first) = post.message().await.unwrap();
    assert_eq!(first["params"]["progress"], 1.0);
    let last_id = seen.id.clone().expect("events have ids");
    // The client loses its connection (2 and 3 may be in flight).
    drop(post);
    // 4 is sent while no stream is attached.
    permits.add_permits(1);
    eventually(Duration::from_secs(2), "progress 4 is sent", || {
        let four_sent = four_sent.clone();
        async move { four_sent.load(Ordering::SeqCst) }
    })
    .await;

    let mut resumed = session.get_stream(Some(&last_id)).await;
    let mut progress = Vec::new();
    let mut ids = vec![last_id];
    let answer = loop {
        let (event, message) = resumed
            .message()
            .await
            .expect("the resumed stream ends with the answer");
        ids.push(event.id.clone().expect("resumed events have ids"));
        if message["method"] == "notifications/progress" {
            progress.push(message["params"]["progress"].as_f64().unwrap());
            if progress.len() == 3 {
                // 5 is sent live, on the resumed stream.
                permits.add_permits(1);
            }
        } else {
            break message;
        }
    };
    assert_eq!(progress, [2.0, 3.0, 4.0, 5.0], "each missed event once");
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["content"][0]["text"], "finished");
    assert!(resumed.message().await.is_none(), "then the stream ends");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no event id twice: {ids:?}");
    assert!(
        ids.iter()
            .all(|id| id.split('-').next() == ids[0].split('-').next()),
        "all on the POST's stream: {ids:?}"
    );
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_last_event_id_is_400() {
    let (tree, addr) = started().await;
    let session = Session::ready(addr, "2025-11-25").await;
    for unknown in ["99-1", "not-an-id", "garbage"] {
        let (head, mut conn) = session.get(Some(unknown)).await;
        assert_eq!(head.status, 400, "{unknown}: {head:?}");
        let body: Value = serde_json::from_slice(&conn.body(&head).await).unwrap();
        assert!(body["error"].is_object(), "{body}");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_stream_ends_after_a_retry_hint_and_the_answer_comes_on_resume() {
    let permits = Arc::new(Semaphore::new(0));
    let p = permits.clone();
    let server = builder()
        .tool_with_schema(
            Tool::new("poll")
                .description("Lets its stream go, then answers later")
                .input_schema(json!({"type": "object"})),
            move |_args, ctx| {
                let permits = p.clone();
                async move {
                    ctx.release_stream();
                    permits.acquire().await.unwrap().forget();
                    Ok(CallToolResult::text("polled"))
                }
            },
        )
        .build()
        .unwrap();
    let config = HttpConfig {
        sse_retry: Duration::from_millis(250),
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(server, config).await;
    let session = Session::ready(addr, "2025-11-25").await;

    let mut post = session.open_post(&call(json!(3), "poll", None)).await;
    let events = post.rest().await;
    let last = events.last().expect("at least the release event");
    assert_eq!(last.retry, Some(250), "{events:?}");
    assert!(last.is_priming(), "an id and no message: {last:?}");
    assert!(
        events.iter().all(|e| e.data.as_deref() == Some("")),
        "no answer on the released stream: {events:?}"
    );
    let last_id = last.id.clone().unwrap();

    permits.add_permits(1);
    let mut resumed = session.get_stream(Some(&last_id)).await;
    let (_, answer) = resumed.message().await.unwrap();
    assert_eq!(answer["id"], 3);
    assert_eq!(answer["result"]["content"][0]["text"], "polled");
    assert!(resumed.message().await.is_none(), "then the stream ends");
    tree.shutdown().await;
}

fn idle(ms: u64) -> HttpConfig {
    HttpConfig {
        idle_timeout: Duration::from_millis(ms),
        ..HttpConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_after_the_idle_timeout() {
    let (tree, addr) = start_http(builder().build().unwrap(), idle(300)).await;
    // The session's last activity is no earlier than this.
    let active = Instant::now();
    let session = Session::ready(addr, "2025-11-25").await;
    assert_eq!(sessions(&tree).await, 1);
    eventually(Duration::from_secs(2), "the idle session ends", || {
        let tree = tree.clone();
        async move { sessions(&tree).await == 0 }
    })
    .await;
    assert!(
        active.elapsed() >= Duration::from_millis(300),
        "not before the idle timeout: {:?}",
        active.elapsed()
    );
    let r = session.post(&tools_list(1)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json()["error"]["code"], -32001);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_an_open_get_stream_is_not_idle() {
    let (tree, addr) = start_http(builder().build().unwrap(), idle(200)).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut get = session.get_stream(None).await;
    assert!(get.next().await.unwrap().is_priming());
    // Three idle timeouts with the stream open.
    assert!(get.quiet_for(Duration::from_millis(600)).await);
    assert_eq!(sessions(&tree).await, 1, "still there");
    // Closed: the session is idle from then on.
    drop(get);
    eventually(Duration::from_secs(2), "the idle session ends", || {
        let tree = tree.clone();
        async move { sessions(&tree).await == 0 }
    })
    .await;
    assert_eq!(session.post(&tools_list(1)).await.status(), 404);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_carries_keep_alive_comments() {
    let config = HttpConfig {
        sse_keep_alive: Duration::from_millis(100),
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(builder().build().unwrap(), config).await;
    let session = Session::ready(addr, "2025-06-18").await;
    let mut get = session.get_stream(None).await;
    let started = Instant::now();
    let mut comments = 0;
    while comments < 3 {
        let block = get
            .block_within(Duration::from_millis(500))
            .await
            .expect("the stream stays open");
        assert!(
            block.is_comment(),
            "nothing else on a quiet stream: {block:?}"
        );
        comments += block.comments;
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(get);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_resumed_stream_resumes_again_from_its_first_event() {
    let permits = Arc::new(Semaphore::new(0));
    let four_sent = Arc::new(AtomicBool::new(false));
    let server = stepper(permits.clone(), four_sent.clone()).build().unwrap();
    let (tree, addr) = start_http(server, HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;

    let mut post = session
        .open_post(&call(json!(7), "stepper", Some("s")))
        .await;
    assert!(post.next().await.unwrap().is_priming());
    let (seen, first) = post.message().await.unwrap();
    assert_eq!(first["params"]["progress"], 1.0);
    let mut last_id = seen.id.clone().unwrap();
    drop(post);

    // Resumed after 1 (2 and 3 to replay), and lost again after the first
    // event of the resumed stream, whatever it is.
    let mut progress = Vec::new();
    let mut resumed = session.get_stream(Some(&last_id)).await;
    let event = resumed.next().await.unwrap();
    if let Some(id) = &event.id {
        last_id = id.clone();
    }
    if event.data.as_deref().is_some_and(|d| !d.is_empty()) {
        progress.push(event.json()["params"]["progress"].as_f64().unwrap());
    }
    drop(resumed);

    // Resumed after the last event the client saw: nothing missed is lost.
    permits.add_permits(2);
    let mut again = session.get_stream(Some(&last_id)).await;
    while let Some((_, message)) = again.message().await {
        if message["method"] == "notifications/progress" {
            progress.push(message["params"]["progress"].as_f64().unwrap());
        }
    }
    assert_eq!(progress, [2.0, 3.0, 4.0, 5.0]);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_03_26_batch_is_answered_on_one_stream() {
    let (tree, addr) = started().await;
    let session = Session::ready(addr, "2025-03-26").await;
    let batch = json!([tools_list(1), call(json!(2), "progress", None)]);
    let mut sse = session.open_post(&batch).await;
    let (_, answer) = sse.message().await.unwrap();
    let ids: Vec<Value> = answer
        .as_array()
        .expect("one array of answers")
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    assert_eq!(ids.len(), 2, "{answer}");
    assert!(
        ids.contains(&json!(1)) && ids.contains(&json!(2)),
        "{answer}"
    );
    assert!(sse.next().await.is_none(), "the stream ends with the batch");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_an_idle_standalone_stream_at_once() {
    let drain = Duration::from_secs(1);
    let server = builder()
        .config(arbor_mcp::server::ServerConfig {
            drain_timeout: drain,
            progress_interval: Duration::ZERO,
            ..arbor_mcp::server::ServerConfig::default()
        })
        .build()
        .unwrap();
    let (tree, addr) = start_http(server, HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut get = session.get_stream(None).await;
    assert!(get.next().await.unwrap().is_priming());
    let started = Instant::now();
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    assert!(get.next().await.is_none(), "the stream ends");
    stopping.await.unwrap();
    assert!(
        started.elapsed() < drain / 2,
        "nothing to drain on an idle stream: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_events_left_the_replay_buffer_cannot_be_resumed() {
    let config = HttpConfig {
        replay_events: 2,
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(builder().build().unwrap(), config).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut primings = Vec::new();
    for id in 1..=3 {
        let mut sse = session.open_post(&tools_list(id)).await;
        let priming = sse.next().await.unwrap();
        assert!(priming.is_priming());
        primings.push(priming.id.unwrap());
        assert_eq!(sse.message().await.unwrap().1["id"], id);
        assert!(sse.message().await.is_none());
    }
    // The buffer keeps the last two answers: the first stream is forgotten.
    let (head, _) = session.get(Some(&primings[0])).await;
    assert_eq!(head.status, 400, "{head:?}");
    // The last is still there, answer and all.
    let mut resumed = session.get_stream(Some(&primings[2])).await;
    assert_eq!(resumed.message().await.unwrap().1["id"], 3);
    assert!(resumed.message().await.is_none());
    tree.shutdown().await;
}

/// Posts `tools/list` on its own stream, reads it to its end and returns
/// the priming event's id and the answer as sent.
async fn answered_post(session: &Session, id: u64) -> (String, String) {
    let mut sse = session.open_post(&tools_list(id)).await;
    let priming = sse.next().await.unwrap();
    assert!(priming.is_priming());
    let answer = sse.next().await.unwrap();
    assert!(sse.message().await.is_none());
    (priming.id.unwrap(), answer.data.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_buffer_keeps_an_answer_up_to_replay_bytes_and_not_past_it() {
    let (tree, addr) = start_http(builder().build().unwrap(), HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let (_, answer) = answered_post(&session, 1).await;
    tree.shutdown().await;

    for (bytes, kept) in [(answer.len(), true), (answer.len() - 1, false)] {
        let config = HttpConfig {
            replay_bytes: bytes,
            ..HttpConfig::default()
        };
        let (tree, addr) = start_http(builder().build().unwrap(), config).await;
        let session = Session::ready(addr, "2025-11-25").await;
        let (priming, _) = answered_post(&session, 1).await;
        let (head, conn) = session.get(Some(&priming)).await;
        if kept {
            assert_eq!(head.status, 200, "replay_bytes = {bytes}: {head:?}");
            let mut resumed = conn.sse(&head);
            assert_eq!(resumed.next().await.unwrap().data.unwrap(), answer);
        } else {
            assert_eq!(head.status, 400, "replay_bytes = {bytes}: {head:?}");
        }
        tree.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_older_than_replay_age_are_not_replayed() {
    let config = HttpConfig {
        replay_age: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(builder().build().unwrap(), config).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let (priming, answer) = answered_post(&session, 1).await;
    // Within its age: replayed.
    let mut resumed = session.get_stream(Some(&priming)).await;
    assert_eq!(resumed.next().await.unwrap().data.unwrap(), answer);
    drop(resumed);
    // Past it, though no newer event has come to push it out: gone.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (head, _) = session.get(Some(&priming)).await;
    assert_eq!(head.status, 400, "{head:?}");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_resume_after_evicted_events_is_refused_rather_than_gapped() {
    let permits = Arc::new(Semaphore::new(0));
    let four_sent = Arc::new(AtomicBool::new(false));
    let server = stepper(permits.clone(), four_sent.clone()).build().unwrap();
    let config = HttpConfig {
        replay_events: 2,
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(server, config).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut post = session
        .open_post(&call(json!(7), "stepper", Some("s")))
        .await;
    let (seen, first) = post.message().await.unwrap();
    assert_eq!(first["params"]["progress"], 1.0);
    drop(post);
    // 2, 3 and 4 are sent; only the last two events are kept.
    permits.add_permits(1);
    eventually(Duration::from_secs(2), "progress 4 is sent", || {
        let four_sent = four_sent.clone();
        async move { four_sent.load(Ordering::SeqCst) }
    })
    .await;
    let (head, conn) = session.get(seen.id.as_deref()).await;
    if head.status == 200 {
        permits.add_permits(1);
        let mut progress = Vec::new();
        let mut sse = conn.sse(&head);
        while let Some((_, m)) = sse.message().await {
            if m["method"] == "notifications/progress" {
                progress.push(m["params"]["progress"].as_f64().unwrap());
            }
        }
        assert_eq!(progress, [2.0, 3.0, 4.0, 5.0], "resumed with a gap");
    }
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_zero_keep_alive_interval_sends_no_comments() {
    let config = HttpConfig {
        sse_keep_alive: Duration::ZERO,
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(builder().build().unwrap(), config).await;
    let session = Session::ready(addr, "2025-06-18").await;
    let mut get = session.get_stream(None).await;
    let first = get.try_block(Duration::from_millis(300)).await;
    drop(get);
    assert!(first.is_err(), "a quiet stream stays quiet: {first:?}");
    tree.shutdown().await;
}

/// The test server with `wait`: a tool that takes 30 s.
fn with_wait() -> arbor_mcp::McpServer {
    builder()
        .tool_with_schema(
            Tool::new("wait")
                .description("Takes 30 s")
                .input_schema(json!({"type": "object"})),
            |_args, _ctx| async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(arbor_mcp::CallToolResult::text("waited"))
            },
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_in_flight_id_is_400_and_leaves_the_first_request_alone() {
    let (tree, addr) = start_http(with_wait(), HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut first = session.open_post(&call(json!(7), "wait", None)).await;
    assert!(first.next().await.unwrap().is_priming());
    let duplicate = session
        .post(&json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
        .await;
    assert_eq!(duplicate.status(), 400);
    assert_eq!(duplicate.json()["error"]["code"], -32600);
    assert_eq!(duplicate.json()["id"], 7);
    // The id is free again once its request is cancelled.
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}});
    assert_eq!(session.post(&cancel).await.status(), 202);
    assert!(
        first.next().await.is_none(),
        "the cancelled request's stream ends"
    );
    let again = session
        .post(&json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
        .await;
    assert_eq!(again.status(), 200);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_request_was_cancelled_still_idles_out() {
    let config = HttpConfig {
        idle_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let (tree, addr) = start_http(with_wait(), config).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut waiting = session.open_post(&call(json!(1), "wait", None)).await;
    assert!(waiting.next().await.unwrap().is_priming());
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
    assert_eq!(session.post(&cancel).await.status(), 202);
    assert!(waiting.next().await.is_none());
    // Watched from the tree: a request would be activity.
    eventually(Duration::from_secs(3), "the idle session ends", || {
        let tree = tree.clone();
        async move { sessions(&tree).await == 0 }
    })
    .await;
    assert_eq!(session.post(&tools_list(2)).await.status(), 404);
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_each_get_their_own_answers() {
    let (tree, addr) = start_http(builder().build().unwrap(), HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-03-26").await;
    // The slow batch first: its answer comes last.
    let mut slow = session
        .open_post(&json!([call(json!("a1"), "nap", None)]))
        .await;
    let mut quick = session
        .open_post(&json!([{"jsonrpc": "2.0", "id": "b1", "method": "ping"}]))
        .await;
    let (_, quick_answer) = quick.message().await.unwrap();
    let (_, slow_answer) = slow.message().await.unwrap();
    assert_eq!(quick_answer[0]["id"], "b1", "{quick_answer}");
    assert_eq!(slow_answer[0]["id"], "a1", "{slow_answer}");
    assert_eq!(slow_answer[0]["result"]["content"][0]["text"], "rested");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_one_request_of_a_batch_keeps_the_others_answers() {
    let (tree, addr) = start_http(builder().build().unwrap(), HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-03-26").await;
    let batch = json!([
        call(json!("a1"), "nap", None),
        call(json!("a2"), "nap", None)
    ]);
    let mut sse = session.open_post(&batch).await;
    let cancel = json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": "a1"}
    });
    assert_eq!(session.post(&cancel).await.status(), 202);
    let (_, answer) = sse.message().await.expect("the batch's answer");
    let answers = answer.as_array().expect("one array of answers");
    assert_eq!(answers.len(), 1, "{answer}");
    assert_eq!(answers[0]["id"], "a2", "{answer}");
    assert!(sse.next().await.is_none(), "the stream ends with the batch");

    // Every request of a batch cancelled: no array comes, the stream ends.
    let batch = json!([call(json!("b1"), "nap", None)]);
    let mut sse = session.open_post(&batch).await;
    let cancel = json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": "b1"}
    });
    assert_eq!(session.post(&cancel).await.status(), 202);
    assert!(sse.next().await.is_none(), "nothing will answer it");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_resume_keeps_its_stream_when_a_handler_releases_it() {
    let server = builder()
        .tool_with_schema(
            Tool::new("poll")
                .description("Lets its stream go, then answers")
                .input_schema(json!({"type": "object"})),
            |_args, ctx| async move {
                ctx.release_stream();
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(CallToolResult::text("polled"))
            },
        )
        .build()
        .unwrap();
    let (tree, addr) = start_http(server, HttpConfig::default()).await;
    // 2025-06-18: no priming events, no resuming of POST streams.
    let session = Session::ready(addr, "2025-06-18").await;
    let mut post = session.open_post(&call(json!(1), "poll", None)).await;
    let (_, answer) = post.message().await.expect("the answer on the same stream");
    assert_eq!(answer["result"]["content"][0]["text"], "polled");
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_cut_short_by_shutdown_is_answered_on_its_stream() {
    let (tree, addr) = start_http(stuck_server(), HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut sse = session.open_post(&call(json!(9), "stuck", None)).await;
    assert!(sse.next().await.unwrap().is_priming());
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let (_, answer) = sse.message().await.expect("an answer, not the end");
    assert_eq!(answer["id"], 9, "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert_eq!(answer["error"]["data"]["reason"], "shutdown", "{answer}");
    assert!(sse.message().await.is_none(), "then the stream ends");
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_inside_a_batch_with_a_request_ends_the_cancelled_stream() {
    let (tree, addr) = started().await;
    let session = Session::ready(addr, "2025-03-26").await;
    let mut slow = session.open_post(&call(json!(1), "nap", None)).await;
    let batch = json!([
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    ]);
    let mut both = session.open_post(&batch).await;
    let (_, answer) = both.message().await.unwrap();
    assert_eq!(answer[0]["id"], 2, "{answer}");
    // The cancelled request's stream ends without an answer.
    assert!(slow.message().await.is_none());
    tree.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_request_stream_carries_its_answer_through_shutdown() {
    let (tree, addr) = start_http(stuck_server(), HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut post = session.open_post(&call(json!(9), "stuck", None)).await;
    let priming = post.next().await.unwrap();
    assert!(priming.is_priming());
    drop(post);
    let mut resumed = session.get_stream(priming.id.as_deref()).await;
    let stopping = tokio::spawn(async move { tree.shutdown().await });
    let (_, answer) = resumed.message().await.expect("an answer, not the end");
    assert_eq!(answer["id"], 9, "{answer}");
    assert_eq!(answer["error"]["data"]["reason"], "shutdown", "{answer}");
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_sessions_inbound_budget_is_429() {
    let (tree, addr) = start_http(small_budget_server(), HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let padded = |id: u64| {
        let mut call = call(json!(id), "nap", None);
        call["params"]["_meta"] = json!({"pad": "p".repeat(200 << 10)});
        call
    };
    // Over the whole budget: it holds all of it while it runs.
    let mut first = session.open_post(&padded(1)).await;
    let refused = session.post(&padded(2)).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.head.get("retry-after"), Some("1"));
    assert_eq!(
        refused.json()["error"]["data"]["limit"],
        "max_inbound_bytes"
    );
    assert_eq!(first.message().await.unwrap().1["id"], 1);
    // Refused before its stream opened: the id is free to use again.
    let mut again = session.open_post(&padded(2)).await;
    assert_eq!(again.message().await.unwrap().1["id"], 2);
    tree.shutdown().await;
}

/// 2025-06-18 removed JSON-RPC batches: a batch posted into such a session
/// is answered on its own POST (400, -32600), leaves no id in flight, and
/// does not keep the session from idling out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_in_a_session_without_batches_is_a_400_that_leaves_nothing_behind() {
    for version in ["2025-06-18", "2025-11-25"] {
        let (tree, addr) = start_http(builder().build().unwrap(), idle(400)).await;
        let session = Session::ready(addr, version).await;
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "ping"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        ]);
        let r = session.post(&batch).await;
        assert_eq!(r.status(), 400, "{version}");
        let error = r.json();
        assert_eq!(error["error"]["code"], -32600, "{error}");
        assert_eq!(error["error"]["data"]["protocolVersion"], version);
        // Notifications only: refused the same way, not 202.
        let notes = json!([{"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}]);
        assert_eq!(session.post(&notes).await.status(), 400, "{version}");
        // The ids are free: the same id is answered.
        let again = session
            .post(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .await;
        assert_eq!(again.status(), 200, "{version}");
        // Nothing holds the session: it idles out.
        eventually(Duration::from_secs(3), "the idle session ends", || {
            let tree = tree.clone();
            async move { sessions(&tree).await == 0 }
        })
        .await;
        tree.shutdown().await;
    }
}

/// DELETE cuts a session's requests short: each is answered on its own
/// stream (-32603, with the reason) instead of its stream ending silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_answers_the_requests_in_flight() {
    let (tree, addr) = start_http(with_wait(), HttpConfig::default()).await;
    let session = Session::ready(addr, "2025-11-25").await;
    let mut waiting = session.open_post(&call(json!(1), "wait", None)).await;
    assert!(waiting.next().await.unwrap().is_priming());
    let headers = [
        ("Mcp-Session-Id", session.id.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let started = std::time::Instant::now();
    assert_eq!(
        exchange(addr, "DELETE", "/mcp", &headers, b"")
            .await
            .status(),
        200
    );
    let (_, answer) = waiting.message().await.expect("an answer for the request");
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert!(
        answer["error"]["data"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("session deleted")),
        "{answer}"
    );
    assert!(waiting.next().await.is_none(), "then its stream ends");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not after a drain"
    );
    eventually(Duration::from_secs(2), "the session process ends", || {
        let tree = tree.clone();
        async move { sessions(&tree).await == 0 }
    })
    .await;
    tree.shutdown().await;
}
