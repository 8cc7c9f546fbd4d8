//! Typed methods for every server feature: tools, resources and templates,
//! subscriptions, prompts, completion, logging, tasks, and pagination.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{broadcast, oneshot};

use super::{Client, ClientError, ClientMsg, RequestOptions};
use crate::jsonrpc::{Id, Notification};
use crate::model::params::{
    CallToolParams, CompleteParams, GetPromptParams, ListParams, ListenFilter, ListenParams,
    ResourceParams, SetLevelParams,
};
use crate::model::NotificationMethod;
use crate::model::{
    CallToolResult, CompleteResult, GetPromptResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LogLevel, Prompt,
    ReadResourceResult, Resource, ResourceTemplate, Tool,
};
use crate::param_header::param_headers;
use crate::version::Era;

pub(super) fn params_of(params: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(params) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

pub(super) fn read<T: DeserializeOwned>(method: &str, result: Value) -> Result<T, ClientError> {
    serde_json::from_value(result).map_err(|e| ClientError::Malformed {
        method: method.into(),
        reason: e.to_string(),
    })
}

/// `tools/call`'s params.
pub(super) fn tool_params(name: &str, arguments: Value) -> Result<Map<String, Value>, ClientError> {
    let arguments = match arguments {
        Value::Object(map) => Some(map),
        Value::Null => None,
        other => {
            return Err(ClientError::Server(
                crate::jsonrpc::ErrorObject::invalid_params(format!(
                    "tool arguments must be an object, not {other}"
                )),
            ))
        }
    };
    Ok(params_of(&CallToolParams {
        name: name.into(),
        arguments,
    }))
}

/// Every item of a paged list, following `nextCursor` to the end.
async fn every_page<T, F, Fut>(mut page: F) -> Result<Vec<T>, ClientError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), ClientError>>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let (items, next) = page(cursor).await?;
        all.extend(items);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

impl Client {
    /// A cacheable request: a fresh cached answer (2026-07-28 `ttlMs`) is
    /// reused; list and update notifications make it stale.
    async fn cacheable(
        &self,
        method: &str,
        key: &str,
        params: Map<String, Value>,
    ) -> Result<Value, ClientError> {
        if let Some(hit) = self.shared.cached(method, key) {
            return Ok(hit);
        }
        let result = self.request(method, params).await?;
        self.shared.keep(method, key, &result);
        Ok(result)
    }

    /// One page of `tools/list`. A tool whose `x-mcp-header` annotations
    /// break the rules is left out, as the spec asks of clients.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn list_tools(&self, cursor: Option<String>) -> Result<ListToolsResult, ClientError> {
        let key = cursor.clone().unwrap_or_default();
        let result = self
            .cacheable("tools/list", &key, params_of(&ListParams { cursor }))
            .await?;
        let mut page: ListToolsResult = read("tools/list", result)?;
        page.tools.retain(|tool| match param_headers(&tool.input_schema) {
            Ok(headers) => {
                self.shared.listed_tool(&tool.name, headers, tool.tasks());
                true
            }
            Err(why) => {
                tracing::warn!(tool = %tool.name, %why, "dropped a tool with invalid x-mcp-header annotations");
                false
            }
        });
        Ok(page)
    }

    /// Every tool, following `nextCursor` to the end.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn list_all_tools(&self) -> Result<Vec<Tool>, ClientError> {
        every_page(|cursor| async move {
            let page = self.list_tools(cursor).await?;
            Ok((page.tools, page.next_cursor))
        })
        .await
    }

    /// Calls a tool with JSON arguments (an object).
    ///
    /// # Errors
    /// As [`Client::request`]; a tool's own failure is a result with
    /// `is_error`, not an error.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Value,
    ) -> Result<CallToolResult, ClientError> {
        self.call_tool_with(name, arguments, RequestOptions::default())
            .await
    }

    /// [`Client::call_tool`] with options (timeout, progress).
    ///
    /// # Errors
    /// As [`Client::call_tool`].
    pub async fn call_tool_with(
        &self,
        name: &str,
        arguments: Value,
        options: RequestOptions,
    ) -> Result<CallToolResult, ClientError> {
        self.call_tool_following(name, arguments, options).await
    }

    /// One page of `resources/list`.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn list_resources(
        &self,
        cursor: Option<String>,
    ) -> Result<ListResourcesResult, ClientError> {
        let key = cursor.clone().unwrap_or_default();
        let result = self
            .cacheable("resources/list", &key, params_of(&ListParams { cursor }))
            .await?;
        read("resources/list", result)
    }

    /// Every resource, following `nextCursor` to the end.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn list_all_resources(&self) -> Result<Vec<Resource>, ClientError> {
        every_page(|cursor| async move {
            let page = self.list_resources(cursor).await?;
            Ok((page.resources, page.next_cursor))
        })
        .await
    }

    /// One page of `resources/templates/list`.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn list_resource_templates(
        &self,
        cursor: Option<String>,
    ) -> Result<ListResourceTemplatesResult, ClientError> {
        let key = cursor.clone().unwrap_or_default();
        let result = self
            .cacheable(
                "resources/templates/list",
                &key,
                params_of(&ListParams { cursor }),
            )
            .await?;
        read("resources/templates/list", result)
    }

    /// Every resource template, following `nextCursor` to the end.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn list_all_resource_templates(&self) -> Result<Vec<ResourceTemplate>, ClientError> {
        every_page(|cursor| async move {
            let page = self.list_resource_templates(cursor).await?;
            Ok((page.resource_templates, page.next_cursor))
        })
        .await
    }

    /// Reads a resource.
    ///
    /// # Errors
    /// As [`Client::request`]; an unknown URI is `-32002`.
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, ClientError> {
        let params = params_of(&ResourceParams { uri: uri.into() });
        let result = self.cacheable("resources/read", uri, params).await?;
        read("resources/read", result)
    }

    /// Subscribes to a resource's updates (handshake era:
    /// `notifications/resources/updated` arrive in
    /// [`Client::notifications`]; 2026-07-28: see [`Client::listen`]).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn subscribe(&self, uri: &str) -> Result<(), ClientError> {
        let params = params_of(&ResourceParams { uri: uri.into() });
        self.request("resources/subscribe", params).await.map(drop)
    }

    /// Ends a resource subscription.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn unsubscribe(&self, uri: &str) -> Result<(), ClientError> {
        let params = params_of(&ResourceParams { uri: uri.into() });
        self.request("resources/unsubscribe", params)
            .await
            .map(drop)
    }

    /// One page of `prompts/list`.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn list_prompts(
        &self,
        cursor: Option<String>,
    ) -> Result<ListPromptsResult, ClientError> {
        let key = cursor.clone().unwrap_or_default();
        let result = self
            .cacheable("prompts/list", &key, params_of(&ListParams { cursor }))
            .await?;
        read("prompts/list", result)
    }

    /// Every prompt, following `nextCursor` to the end.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn list_all_prompts(&self) -> Result<Vec<Prompt>, ClientError> {
        every_page(|cursor| async move {
            let page = self.list_prompts(cursor).await?;
            Ok((page.prompts, page.next_cursor))
        })
        .await
    }

    /// Gets a prompt with its arguments.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: HashMap<String, String>,
    ) -> Result<GetPromptResult, ClientError> {
        let params = params_of(&GetPromptParams {
            name: name.into(),
            arguments,
        });
        let result = self.request("prompts/get", params).await?;
        read("prompts/get", result)
    }

    /// Asks for completions of an argument.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn complete(&self, params: CompleteParams) -> Result<CompleteResult, ClientError> {
        let result = self
            .request("completion/complete", params_of(&params))
            .await?;
        read("completion/complete", result)
    }

    /// Asks for log entries at `level` and above: `logging/setLevel` in the
    /// handshake era, the envelope's `logLevel` on every later request in
    /// 2026-07-28.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn set_log_level(&self, level: LogLevel) -> Result<(), ClientError> {
        self.shared.set_log_level(Some(level));
        match self.protocol_version().map(|v| v.era()) {
            Some(Era::Modern) => Ok(()),
            _ => {
                let params = params_of(&SetLevelParams { level });
                self.request("logging/setLevel", params).await.map(drop)
            }
        }
    }

    /// Checks the server answers: `ping` in the handshake era;
    /// 2026-07-28 has no `ping`, so `server/discover` stands in for it.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn ping(&self) -> Result<(), ClientError> {
        let method = match self.protocol_version().map(|v| v.era()) {
            Some(Era::Modern) => "server/discover",
            _ => "ping",
        };
        self.request(method, Map::new()).await.map(drop)
    }

    /// Opens a 2026-07-28 `subscriptions/listen` stream: returns once the
    /// server has acknowledged it (so what happens from then on is told),
    /// and the notifications it carries arrive in [`Listen::next`] (and in
    /// [`Client::notifications`]) until it is closed or dropped.
    ///
    /// # Errors
    /// The server's refusal; [`ClientError::Timeout`] without an
    /// acknowledgement within the request timeout; [`ClientError::Stopped`]
    /// once the client process is gone.
    pub async fn listen(&self, filter: ListenFilter) -> Result<Listen, ClientError> {
        let notifications = self.notifications();
        let mut acknowledgements = self.notifications();
        let params = params_of(&ListenParams {
            notifications: filter,
        });
        // A listen stream is open-ended: it ends when closed.
        let open_ended = RequestOptions {
            timeout: Some(std::time::Duration::from_secs(365 * 24 * 3600)),
            ..RequestOptions::default()
        };
        let (id, mut ended) = self
            .submit("subscriptions/listen", params, &open_ended, Vec::new())
            .await?;
        let mut listen = Listen {
            client: self.clone(),
            id: Some(id.clone()),
            notifications,
            ended: oneshot::channel().1,
            acknowledged: ListenFilter::default(),
        };
        let id = serde_json::to_value(&id).unwrap_or(Value::Null);
        let wait = self.config.request_timeout;
        let deadline = tokio::time::Instant::now() + wait;
        let acknowledged = loop {
            tokio::select! {
                n = acknowledgements.recv() => match n {
                    Ok(n) if n.method == NotificationMethod::SubscriptionsAcknowledged.as_str() => {
                        let params = Value::Object(n.params.unwrap_or_default());
                        if params["_meta"]["io.modelcontextprotocol/subscriptionId"] == id {
                            break serde_json::from_value(params["notifications"].clone())
                                .unwrap_or_default();
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return Err(ClientError::Stopped),
                },
                answer = &mut ended => {
                    // Answered before it was acknowledged: refused (or the
                    // connection is gone).
                    return Err(match answer {
                        Ok(Err(error)) => error,
                        Ok(Ok(_)) | Err(_) => ClientError::Stopped,
                    });
                }
                _ = tokio::time::sleep_until(deadline) => return Err(ClientError::Timeout(wait)),
            }
        };
        listen.ended = ended;
        listen.acknowledged = acknowledged;
        Ok(listen)
    }
}

/// An open `subscriptions/listen` stream.
#[derive(Debug)]
pub struct Listen {
    client: Client,
    id: Option<Id>,
    notifications: broadcast::Receiver<Notification>,
    ended: oneshot::Receiver<Result<Value, ClientError>>,
    acknowledged: ListenFilter,
}

impl Listen {
    /// What the server said it honours (a subset of what was asked).
    pub fn acknowledged(&self) -> &ListenFilter {
        &self.acknowledged
    }

    /// The next notification, or `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Notification> {
        loop {
            tokio::select! {
                n = self.notifications.recv() => match n {
                    Ok(n) => return Some(n),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a listen stream fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = &mut self.ended => return None,
            }
        }
    }

    /// Closes the stream (`notifications/cancelled` for its request).
    pub fn close(mut self) {
        self.cancel();
    }

    fn cancel(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = self.client.process.send_system(ClientMsg::Cancel(id));
        }
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        self.cancel();
    }
}
