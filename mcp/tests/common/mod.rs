//! A line client over an in-memory duplex, and a test server.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use arbor_mcp::{Prompt, Resource, ResourceTemplate, Tool};
use std::time::Duration;

use arbor_mcp::transport::serve_lines;
use arbor_mcp::LogLevel;
use arbor_mcp::{
    CallToolResult, Content, GetPromptResult, McpServer, PromptArgument, PromptMessage,
    ResourceContents, Role, ServerBuilder, ServerConfig, ToolError,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};

pub struct Client {
    write: WriteHalf<DuplexStream>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    pub served: tokio::task::JoinHandle<()>,
}

impl Client {
    pub async fn connect(server: McpServer) -> Client {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (their_read, their_write) = tokio::io::split(theirs);
        let served = tokio::spawn(async move {
            let _ = serve_lines(server, BufReader::new(their_read), their_write).await;
        });
        let (read, write) = tokio::io::split(ours);
        Client {
            write,
            lines: BufReader::new(read).lines(),
            served,
        }
    }

    /// A client on the public in-memory transport (no handle on the server
    /// task).
    pub async fn in_memory(server: McpServer) -> Client {
        let (read, write) = tokio::io::split(arbor_mcp::transport::connect_in_memory(server));
        Client {
            write,
            lines: BufReader::new(read).lines(),
            served: tokio::spawn(async {}),
        }
    }

    pub async fn send_raw(&mut self, line: &str) {
        self.write.write_all(line.as_bytes()).await.unwrap();
        self.write.write_all(b"\n").await.unwrap();
    }

    pub async fn send(&mut self, value: Value) {
        self.send_raw(&value.to_string()).await;
    }

    /// The next line from the server, within 5 s.
    pub async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(5), self.lines.next_line())
            .await
            .expect("a message within 5 s")
            .unwrap()
            .expect("the connection is open");
        serde_json::from_str(&line).unwrap()
    }

    /// Nothing arrives within `ms` milliseconds.
    pub async fn silent_for(&mut self, ms: u64) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), self.lines.next_line())
            .await
            .is_err()
    }

    /// Sends a request and returns its response (skipping notifications).
    pub async fn call(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let v = self.recv().await;
            if v.get("id") == Some(&json!(id)) {
                return v;
            }
        }
    }

    /// Completes the handshake at `version`.
    pub async fn initialize(&mut self, version: &str) -> Value {
        let r = self
            .call(
                0,
                "initialize",
                json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
            )
            .await;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        r
    }

    /// Ends the input, leaving the output open.
    pub async fn write_shutdown(&mut self) {
        self.write.shutdown().await.unwrap();
    }

    pub async fn close(mut self) {
        self.write.shutdown().await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.served).await;
    }
}

/// The 2026-07-28 envelope.
pub fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}
    })
}

/// `params` with the 2026-07-28 envelope added.
pub fn modern(mut params: Value) -> Value {
    params["_meta"] = meta();
    params
}

#[derive(Deserialize, JsonSchema)]
pub struct AddArgs {
    /// First addend.
    pub a: i64,
    /// Second addend.
    pub b: i64,
}

#[derive(Deserialize, JsonSchema)]
pub struct SlowArgs {
    /// How long to work, in milliseconds.
    pub ms: u64,
}

pub fn server_with(config: ServerConfig) -> McpServer {
    builder_with(config).build().unwrap()
}

/// The test server's declarations, to add to before building.
pub fn builder_with(config: ServerConfig) -> ServerBuilder {
    let mut builder = ServerBuilder::new("test-server", "1.0.0")
        .instructions("for tests")
        .config(config)
        .tool(Tool::new("add").description("Adds two integers"), |args: AddArgs, _ctx| async move {
            Ok(CallToolResult::text((args.a + args.b).to_string()))
        })
        .tool(Tool::new("fail").description("Always fails"), |_args: SlowArgs, _ctx| async move {
            Err::<CallToolResult, _>(ToolError::new("it failed"))
        })
        .tool(Tool::new("panic").task_support(arbor_mcp::tasks::TaskSupport::Optional).description("Panics"), |_args: SlowArgs, _ctx| async move {
            if true {
                panic!("handler bug");
            }
            Ok(CallToolResult::text("unreachable"))
        })
        .tool(Tool::new("slow").description("Works for a while, reporting progress"), |args: SlowArgs, ctx| async move {
            for i in 1..=4u64 {
                tokio::time::sleep(Duration::from_millis(args.ms / 4)).await;
                ctx.progress(i as f64, Some(4.0), Some("working"));
            }
            Ok(CallToolResult::text("done"))
        })
        .tool(Tool::new("confirm").task_support(arbor_mcp::tasks::TaskSupport::Optional).description("Asks the user to confirm first"), |_args: SlowArgs, ctx| async move {
            // The answer read typed: an ElicitResult.
            match ctx.input::<arbor_mcp::model::ElicitResult>("ok") {
                None => Err(ToolError::input_required(
                    arbor_mcp::input::InputRequired::new()
                        .elicit("ok", "Proceed?", json!({"type": "object", "properties": {"go": {"type": "boolean"}}}))
                        .with_state(json!({"step": 1})),
                )),
                Some(Err(e)) => Err(ToolError::new(format!("not an elicitation result: {e}"))),
                Some(Ok(answer)) => Ok(CallToolResult::text(format!(
                    "{} at step {}",
                    serde_json::to_value(answer.action).unwrap().as_str().unwrap_or("?"),
                    ctx.request_state().map(|s| s["step"].clone()).unwrap_or_default()
                ))),
            }
        })
        .tool(Tool::new("visit").description("Sends the user to a URL first"), |_args: SlowArgs, ctx| async move {
            match ctx.input_response("visit") {
                None => Err(ToolError::input_required(
                    arbor_mcp::input::InputRequired::new().elicit_url("visit", "Sign in", "https://example.com/auth", "e-1"),
                )),
                Some(answer) => Ok(CallToolResult::text(answer["action"].as_str().unwrap_or("?").to_string())),
            }
        })
        .tool(Tool::new("summarize").description("Asks the client's model"), |_args: SlowArgs, ctx| async move {
            match ctx.input_response("model") {
                None => Err(ToolError::input_required(arbor_mcp::input::InputRequired::new().sample(
                    "model",
                    arbor_mcp::model::CreateMessageParams::user("Summarize", 50),
                ))),
                Some(answer) => Ok(CallToolResult::text(answer["content"]["text"].as_str().unwrap_or("?").to_string())),
            }
        })
        .tool(Tool::new("burst").description("Reports progress 100 times at once"), |_args: SlowArgs, ctx| async move {
            let sent = (1..=100).filter(|i| ctx.progress(f64::from(*i), None, None)).count();
            Ok(CallToolResult::text(sent.to_string()))
        })
        .tool(Tool::new("log").description("Logs at debug and warning"), |_args: SlowArgs, ctx| async move {
            ctx.log(LogLevel::Debug, Some("test"), json!("a detail"));
            ctx.log(LogLevel::Warning, Some("test"), json!({"careful": true}));
            Ok(CallToolResult::text("logged"))
        })
        .tool_with_schema(Tool::new("structured").description("Returns structured output").input_schema(json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})).output_schema(json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})), |args, _ctx| async move {
                if args["ok"] == json!(true) {
                    Ok(CallToolResult::structured(json!({"n": 42})))
                } else {
                    Ok(CallToolResult::structured(json!({"n": "not a number"})))
                }
            })
        .resource(Resource::new("test://static/hello", "hello").mime_type("text/plain"), |uri, _ctx| async move {
            Ok(vec![ResourceContents::text(uri, Some("text/plain"), "hello world")])
        })
        .resource_template(ResourceTemplate::new(arbor_mcp::template::UriTemplate::parse("test://users/{id}/profile")
                .unwrap()
                .with_var(arbor_mcp::template::TemplateVar::new("id").pattern("^[0-9]+$").unwrap())
                .unwrap(), "user profile").mime_type("application/json"), |vars, uri, _ctx| async move {
                let id = vars.get_str("id").unwrap_or_default().to_string();
                Ok(vec![ResourceContents::text(uri, Some("application/json"), json!({"id": id}).to_string())])
            })
        .prompt(Prompt::new("greet").description("Greets someone").arguments(vec![PromptArgument::required("name", "who"), PromptArgument::optional("style", "how")]), |args, _ctx| async move {
                Ok(GetPromptResult {
                    description: None,
                    messages: vec![PromptMessage {
                        role: Role::User,
                        content: Content::text(format!("Hello, {}!", args["name"])),
                    }],
                })
            });
    builder = builder
        .tool(
            Tool::new("long")
                .task_support(arbor_mcp::tasks::TaskSupport::Required)
                .description("Runs only as a task"),
            |args: SlowArgs, _ctx| async move {
                tokio::time::sleep(Duration::from_millis(args.ms)).await;
                Ok(CallToolResult::text(format!("slept {}", args.ms)))
            },
        )
        .tool(
            Tool::new("two")
                .task_support(arbor_mcp::tasks::TaskSupport::Optional)
                .description("Asks two questions"),
            |_args: SlowArgs, ctx| async move {
                match (ctx.input_response("a"), ctx.input_response("b")) {
                    (Some(a), Some(b)) => Ok(CallToolResult::text(format!(
                        "{} {}",
                        a["action"], b["action"]
                    ))),
                    _ => Err(ToolError::input_required(
                        arbor_mcp::input::InputRequired::new()
                            .elicit("a", "First?", json!({"type": "object"}))
                            .elicit("b", "Second?", json!({"type": "object"})),
                    )),
                }
            },
        );
    builder = builder.completion(|req| async move {
        let pool: Vec<String> = match req.argument.as_str() {
            "name" => ["Ada", "Alan", "Grace"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            "id" => (0..250).map(|i| i.to_string()).collect(),
            _ => Vec::new(),
        };
        pool.into_iter()
            .filter(|v| v.starts_with(&req.value))
            .collect()
    });
    builder.prompt(
        Prompt::new("pick").description("Picks a root"),
        |_args, ctx| async move {
            match ctx.input::<arbor_mcp::model::ListRootsResult>("roots") {
                None => Err(arbor_mcp::HandlerError::InputRequired(
                    arbor_mcp::input::InputRequired::new().roots("roots"),
                )),
                Some(Err(e)) => Err(arbor_mcp::HandlerError::Protocol(
                    arbor_mcp::jsonrpc::ErrorObject::invalid_params(format!(
                        "not a roots result: {e}"
                    )),
                )),
                Some(Ok(answer)) => Ok(GetPromptResult {
                    description: None,
                    messages: vec![PromptMessage {
                        role: Role::User,
                        content: Content::text(format!("{} roots", answer.roots.len())),
                    }],
                }),
            }
        },
    )
}

pub fn server() -> McpServer {
    server_with(ServerConfig {
        page_size: 5,
        ..ServerConfig::default()
    })
}
