//! `arbor tools|call|read|prompt`: arbor's client from the command line,
//! for people (text) and scripts (`--json`, exit codes).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use arbor::mcp::client::{Client, ClientError, Connector, RequestOptions, VersionChoice};
use arbor::mcp::{Content, ProtocolVersion};
use arbor::transports::client::{connector_with, ClientTls, ConnectOptions, StdioConnector, Trust};
use serde_json::Value;

/// Exit codes, so that a script can tell what failed.
pub(crate) mod exit {
    /// The tool ran and reported a failure (`isError`).
    pub(crate) const TOOL_ERROR: u8 = 1;
    /// The command line was wrong (as clap exits).
    pub(crate) const USAGE: u8 = 2;
    /// No connection: the server could not be reached or agreed no version.
    pub(crate) const CONNECT: u8 = 3;
    /// The server answered with a JSON-RPC error.
    pub(crate) const SERVER: u8 = 4;
    /// No answer in time.
    pub(crate) const TIMEOUT: u8 = 5;
}

/// Where the server is and how to speak to it: the options every client
/// command shares.
#[derive(Debug, clap::Args)]
pub(crate) struct Target {
    /// Protocol version: `auto` (2026-07-28 when the server speaks it, else
    /// the handshake), `2026` (2026-07-28 only), `handshake` (2025-11-25), or
    /// an exact version such as 2025-06-18.
    #[arg(long, default_value = "auto")]
    era: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// How long to wait for each answer.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// A bearer token for a server that checks them: in the
    /// `Authorization` header (HTTP, WebSocket), or sent first (TCP).
    #[arg(long, env = "ARBOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Trust only this CA (PEM) for https://, wss:// and tcp+tls://
    /// [default: the system's roots].
    #[arg(long, value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) for servers that ask for one (mTLS),
    /// with --client-key.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<std::path::PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<std::path::PathBuf>,
    /// A server to spawn and speak to on its stdin/stdout, instead of a URL.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl Target {
    fn version(&self) -> anyhow::Result<VersionChoice> {
        Ok(match self.era.as_str() {
            "auto" => VersionChoice::Auto,
            "2026" | "modern" => VersionChoice::Pinned(ProtocolVersion::V2026_07_28),
            "handshake" => VersionChoice::Pinned(ProtocolVersion::LATEST_HANDSHAKE),
            exact => VersionChoice::Pinned(
                ProtocolVersion::parse(exact)
                    .with_context(|| format!("--era {exact:?}: not a version arbor speaks"))?,
            ),
        })
    }

    /// The URL is the first positional unless a command follows `--`.
    fn split<'a>(
        &self,
        positional: &'a [String],
    ) -> anyhow::Result<(Box<dyn Connector>, &'a [String])> {
        if let Some((program, args)) = self.command.split_first() {
            return Ok((
                Box::new(StdioConnector::new(program, args.iter().cloned())),
                positional,
            ));
        }
        let Some((url, rest)) = positional.split_first() else {
            bail!("give the server's URL, or `-- COMMAND…` to spawn one");
        };
        let identity = self.client_cert.as_deref().zip(self.client_key.as_deref());
        let tls = match (&self.ca, identity) {
            (None, None) => None,
            (Some(ca), _) => Some(ClientTls::new(Trust::Ca(ca), identity)),
            (None, Some(_)) => Some(ClientTls::new(Trust::System, identity)),
        };
        let options = ConnectOptions {
            token: self.token.clone(),
            tls: tls.transpose().map_err(anyhow::Error::msg)?,
        };
        let connector = connector_with(url, &options).map_err(anyhow::Error::msg)?;
        Ok((connector, rest))
    }
}

/// What to do once connected.
#[derive(Debug)]
pub(crate) enum Action {
    /// List the tools.
    Tools,
    /// Call a tool with JSON arguments, and an idempotency key if given.
    Call {
        /// Sent in the call's `_meta`.
        idempotency_key: Option<String>,
    },
    /// Read a resource.
    Read,
    /// Get a prompt with `key=value` arguments.
    Prompt,
}

/// Runs one client command: connects, acts, prints, and exits with a code
/// that says what failed.
pub(crate) async fn run(action: Action, positional: Vec<String>, target: Target) -> ExitCode {
    match act(action, &positional, &target).await {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("arbor: {failure:#}");
            ExitCode::from(failure.code)
        }
    }
}

/// An error with the exit code it calls for.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if f.alternate() {
            write!(f, "{:#}", self.error)
        } else {
            write!(f, "{}", self.error)
        }
    }
}

fn usage(error: anyhow::Error) -> Failure {
    Failure {
        code: exit::USAGE,
        error,
    }
}

fn failed(error: ClientError) -> Failure {
    let code = match &error {
        ClientError::Server(_) | ClientError::Malformed { .. } | ClientError::Http { .. } => {
            exit::SERVER
        }
        ClientError::Timeout(_) => exit::TIMEOUT,
        _ => exit::CONNECT,
    };
    let error = match error.server_error().and_then(|e| e.data.clone()) {
        Some(data) => anyhow::anyhow!("{error} (data: {data})"),
        None => anyhow::Error::new(error),
    };
    Failure { code, error }
}

async fn act(action: Action, positional: &[String], target: &Target) -> Result<u8, Failure> {
    let (connector, rest) = target.split(positional).map_err(usage)?;
    let version = target.version().map_err(usage)?;
    let client = Client::builder()
        .name("arbor-cli", env!("CARGO_PKG_VERSION"))
        .version(version)
        .request_timeout(target.timeout)
        .connect(connector)
        .await
        .map_err(|e| Failure {
            code: exit::CONNECT,
            error: anyhow::Error::new(e).context("connecting"),
        })?;
    let outcome = dispatch(&client, action, rest, target.json).await;
    client.close().await;
    outcome
}

async fn dispatch(
    client: &Client,
    action: Action,
    rest: &[String],
    json: bool,
) -> Result<u8, Failure> {
    match action {
        Action::Tools => {
            let tools = client.list_all_tools().await.map_err(failed)?;
            if json {
                print_json(&tools);
            } else {
                for tool in tools {
                    println!("{}\t{}", tool.name, tool.description.unwrap_or_default());
                }
            }
            Ok(0)
        }
        Action::Call { idempotency_key } => {
            let [tool, args @ ..] = rest else {
                return Err(usage(anyhow::anyhow!("give the tool's name")));
            };
            let arguments: Value = match args {
                [] => Value::Object(Default::default()),
                [json] => serde_json::from_str(json)
                    .with_context(|| format!("arguments {json:?} are not JSON"))
                    .map_err(usage)?,
                _ => {
                    return Err(usage(anyhow::anyhow!(
                        "give the arguments as one JSON object"
                    )))
                }
            };
            let options = RequestOptions {
                idempotency_key,
                ..RequestOptions::default()
            };
            let result = client
                .call_tool_with(tool, arguments, options)
                .await
                .map_err(failed)?;
            if json {
                print_json(&result);
            } else {
                match &result.structured_content {
                    Some(structured) => println!("{structured}"),
                    None => print_content(&result.content),
                }
            }
            Ok(if result.is_error { exit::TOOL_ERROR } else { 0 })
        }
        Action::Read => {
            let [uri] = rest else {
                return Err(usage(anyhow::anyhow!("give one resource URI")));
            };
            let read = client.read_resource(uri).await.map_err(failed)?;
            if json {
                print_json(&read);
            } else {
                for contents in &read.contents {
                    let value = serde_json::to_value(contents).unwrap_or_default();
                    match value.get("text").and_then(Value::as_str) {
                        Some(text) => println!("{text}"),
                        None => println!("{value}"),
                    }
                }
            }
            Ok(0)
        }
        Action::Prompt => {
            let [name, args @ ..] = rest else {
                return Err(usage(anyhow::anyhow!("give the prompt's name")));
            };
            let mut arguments = HashMap::new();
            for arg in args {
                let Some((key, value)) = arg.split_once('=') else {
                    return Err(usage(anyhow::anyhow!(
                        "prompt arguments are key=value, not {arg:?}"
                    )));
                };
                arguments.insert(key.to_string(), value.to_string());
            }
            let prompt = client.get_prompt(name, arguments).await.map_err(failed)?;
            if json {
                print_json(&prompt);
            } else {
                for message in &prompt.messages {
                    let role = serde_json::to_value(message.role).unwrap_or_default();
                    print!("{}: ", role.as_str().unwrap_or("?"));
                    print_content(std::slice::from_ref(&message.content));
                }
            }
            Ok(0)
        }
    }
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("arbor: {e}"),
    }
}

fn print_content(content: &[Content]) {
    for block in content {
        match block.as_text() {
            Some(text) => println!("{text}"),
            None => println!("{}", serde_json::to_value(block).unwrap_or_default()),
        }
    }
}
