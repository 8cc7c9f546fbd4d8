//! The MCP conformance suite's client under test, built on arbor's client:
//! `conformance client --command "<this binary>" --scenario S` runs it with
//! the scenario's server URL as its last argument and the scenario in
//! `MCP_CONFORMANCE_SCENARIO` (its protocol version in
//! `MCP_CONFORMANCE_PROTOCOL_VERSION`, its data, when it has any, in
//! `MCP_CONFORMANCE_CONTEXT`).
//!
//! ```text
//! cargo build --example conformance_client
//! conformance client --command target/debug/examples/conformance_client --scenario tools_call
//! ```
//!
//! Each scenario is what a user of the client would do (list, call, read);
//! the protocol work (versions, envelopes, headers, input rounds, stream
//! resumption, schema defaults) is the client's own.

mod skills;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context as _};
use arbor::mcp::client::{Client, ElicitModes, VersionChoice};
use arbor::mcp::model::{CreateMessageResult, ElicitAction, ElicitResult, Role, Root};
use arbor::mcp::{Content, ProtocolVersion};
use arbor::transports::client::oauth::{Credentials, Grant};
use arbor::transports::client::{HttpConnector, OAuth, OAuthConfig};
use serde_json::{json, Map, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let url = std::env::args()
        .next_back()
        .context("the server URL is the last argument")?;
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION")
        .ok()
        .and_then(|v| ProtocolVersion::parse(&v))
        .map_or(VersionChoice::Auto, VersionChoice::Pinned);
    let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or(Value::Null);
    let client = connect(&url, version, oauth(&scenario, &context)).await?;
    let outcome = run(&client, &scenario, &context).await;
    client.close().await;
    outcome
}

/// A client that answers every server request the suite makes: forms
/// accepted as filled (with the schema's defaults), a canned model answer,
/// one root.
async fn connect(url: &str, version: VersionChoice, oauth: OAuthConfig) -> anyhow::Result<Client> {
    Client::builder()
        .name("arbor-conformance-client", env!("CARGO_PKG_VERSION"))
        .version(version)
        .request_timeout(Duration::from_secs(20))
        .elicitation(ElicitModes::FormAndUrl, |params| async move {
            // A person who agrees to everything: booleans asked for are
            // confirmed; every other field keeps its default.
            let mut content = Map::new();
            if let arbor::mcp::model::ElicitRequestParams::Form {
                requested_schema, ..
            } = &params
            {
                let properties = requested_schema
                    .get("properties")
                    .and_then(Value::as_object);
                for (name, property) in properties.into_iter().flatten() {
                    let boolean = property.get("type") == Some(&json!("boolean"));
                    if boolean && property.get("default").is_none() {
                        content.insert(name.clone(), json!(true));
                    }
                }
            }
            Ok(ElicitResult {
                action: ElicitAction::Accept,
                content: Some(content),
            })
        })
        .sampling(|_params| async {
            Ok(CreateMessageResult {
                role: Role::Assistant,
                content: Content::text("A canned answer from the conformance client."),
                model: "conformance-model".into(),
                stop_reason: Some("endTurn".into()),
            })
        })
        .roots(vec![Root {
            uri: "file:///tmp/conformance".into(),
            name: Some("conformance".into()),
        }])
        .connect(HttpConnector::new(url).oauth(OAuth::new(oauth)))
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// The OAuth client for a scenario: the suite's redirect URI and client
/// metadata document, the scenario's credentials, and its grant.
fn oauth(scenario: &str, context: &Value) -> OAuthConfig {
    let text = |key: &str| context[key].as_str().map(str::to_string);
    let credentials = text("client_id").map(|client_id| Credentials {
        issuer: text("issuer"),
        client_id,
        client_secret: text("client_secret"),
    });
    let grant = match scenario {
        "auth/client-credentials-basic" => Grant::ClientCredentials,
        "auth/client-credentials-jwt" => Grant::ClientCredentialsJwt {
            private_key_pem: text("private_key_pem").unwrap_or_default(),
        },
        "auth/wif-jwt-bearer" => Grant::JwtBearer {
            assertion: text("valid_jwt").unwrap_or_default(),
        },
        "auth/enterprise-managed-authorization" => Grant::TokenExchange {
            idp_token_endpoint: text("idp_token_endpoint").unwrap_or_default(),
            idp_client_id: text("idp_client_id").unwrap_or_default(),
            id_token: text("idp_id_token").unwrap_or_default(),
        },
        _ => Grant::AuthorizationCode,
    };
    OAuthConfig {
        redirect_uri: "http://localhost:3000/callback".into(),
        client_name: "arbor-conformance-client".into(),
        client_metadata_url: Some("https://conformance-test.local/client-metadata.json".into()),
        credentials: credentials.into_iter().collect(),
        grant,
        ..OAuthConfig::default()
    }
}

async fn run(client: &Client, scenario: &str, context: &Value) -> anyhow::Result<()> {
    match scenario {
        s if s.starts_with("auth/") => {
            // What a user does: list, then call (a step-up or a moved
            // authorization server shows on the second request).
            let tools = client.list_all_tools().await?;
            if let Some(tool) = tools.first() {
                client.call_tool(&tool.name, json!({})).await?;
            }
        }
        "initialize" | "request-metadata" | "json-schema-ref-no-deref" => {
            client.list_all_tools().await?;
        }
        "tools_call" => {
            let tools = client.list_all_tools().await?;
            let tool = tools.first().context("the server lists no tool")?;
            client
                .call_tool(&tool.name, json!({"a": 2, "b": 3}))
                .await?;
        }
        "elicitation-sep1034-client-defaults" => {
            client.list_all_tools().await?;
            client
                .call_tool("test_client_elicitation_defaults", json!({}))
                .await?;
        }
        "sse-retry" => {
            client.call_tool("test_reconnection", json!({})).await?;
        }
        "sep-2322-client-request-state" => {
            client.list_all_tools().await?;
            for tool in [
                "test_mrtr_echo_state",
                "test_mrtr_unrelated",
                "test_mrtr_no_state",
                "test_mrtr_no_result_type",
            ] {
                client.call_tool(tool, json!({})).await?;
            }
        }
        "http-standard-headers" => {
            let tools = client.list_all_tools().await?;
            if let Some(tool) = tools.first() {
                client.call_tool(&tool.name, json!({})).await?;
            }
            for resource in client.list_all_resources().await? {
                client.read_resource(&resource.uri).await?;
            }
            for prompt in client.list_all_prompts().await? {
                client.get_prompt(&prompt.name, HashMap::new()).await?;
            }
        }
        "http-custom-headers" => {
            client.list_all_tools().await?;
            let calls = context["toolCalls"].as_array().cloned().unwrap_or_default();
            for call in calls {
                let name = call["name"]
                    .as_str()
                    .context("a tool call without a name")?;
                client.call_tool(name, call["arguments"].clone()).await?;
            }
        }
        "http-invalid-tool-headers" => {
            // The client drops every tool with broken annotations; what is
            // left is called.
            for tool in client.list_all_tools().await? {
                client
                    .call_tool(&tool.name, json!({"region": "us-west1"}))
                    .await?;
            }
        }
        "json-schema-2020-12-preservation" => {
            let tools = client.list_all_tools().await?;
            let focal = tools
                .iter()
                .find(|t| t.name == "json_schema_2020_12_tool")
                .context("no json_schema_2020_12_tool")?;
            let schema = focal.input_schema.clone();
            client
                .call_tool("json_schema_echo", json!({ "schema": schema }))
                .await?;
        }
        "sep-2640-client-no-prefetch" => {
            skills::list(client).await?;
        }
        s if s.starts_with("sep-2640-client-verify") => {
            let listed = skills::list(client).await?;
            let skill = listed.first().context("no skill listed")?;
            skills::load(client, skill).await?;
        }
        other => bail!("unknown scenario {other:?}"),
    }
    Ok(())
}
