//! The MCP method names of both eras and both directions, as types: the one
//! place a method's wire name is written, and where each era's rules about
//! it live.

use std::fmt;
use std::str::FromStr;

use crate::version::Era;

/// A request method: the client's requests to the server, and the server's
/// requests to the client (sampling, elicitation, roots).
///
/// ```
/// use arbor_mcp::model::Method;
/// use arbor_mcp::Era;
///
/// let method: Method = "tools/call".parse().unwrap();
/// assert_eq!(method, Method::ToolsCall);
/// assert!(!Method::Initialize.in_era(Era::Modern));
/// assert!("tools/frobnicate".parse::<Method>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `initialize` (handshake era).
    Initialize,
    /// `ping` (handshake era).
    Ping,
    /// `server/discover` (2026-07-28).
    ServerDiscover,
    /// `tools/list`.
    ToolsList,
    /// `tools/call`.
    ToolsCall,
    /// `resources/list`.
    ResourcesList,
    /// `resources/templates/list`.
    ResourcesTemplatesList,
    /// `resources/read`.
    ResourcesRead,
    /// `resources/subscribe` (handshake era).
    ResourcesSubscribe,
    /// `resources/unsubscribe` (handshake era).
    ResourcesUnsubscribe,
    /// `subscriptions/listen` (2026-07-28).
    SubscriptionsListen,
    /// `prompts/list`.
    PromptsList,
    /// `prompts/get`.
    PromptsGet,
    /// `completion/complete`.
    CompletionComplete,
    /// `logging/setLevel` (handshake era).
    LoggingSetLevel,
    /// `tasks/get`.
    TasksGet,
    /// `tasks/list` (2025-11-25).
    TasksList,
    /// `tasks/cancel`.
    TasksCancel,
    /// `tasks/result` (2025-11-25).
    TasksResult,
    /// `tasks/update` (2026-07-28).
    TasksUpdate,
    /// `sampling/createMessage`, server to client.
    SamplingCreateMessage,
    /// `elicitation/create`, server to client.
    ElicitationCreate,
    /// `roots/list`, server to client.
    RootsList,
}

impl Method {
    /// Every method, in the order above.
    pub const ALL: [Method; 23] = [
        Method::Initialize,
        Method::Ping,
        Method::ServerDiscover,
        Method::ToolsList,
        Method::ToolsCall,
        Method::ResourcesList,
        Method::ResourcesTemplatesList,
        Method::ResourcesRead,
        Method::ResourcesSubscribe,
        Method::ResourcesUnsubscribe,
        Method::SubscriptionsListen,
        Method::PromptsList,
        Method::PromptsGet,
        Method::CompletionComplete,
        Method::LoggingSetLevel,
        Method::TasksGet,
        Method::TasksList,
        Method::TasksCancel,
        Method::TasksResult,
        Method::TasksUpdate,
        Method::SamplingCreateMessage,
        Method::ElicitationCreate,
        Method::RootsList,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Initialize => "initialize",
            Method::Ping => "ping",
            Method::ServerDiscover => "server/discover",
            Method::ToolsList => "tools/list",
            Method::ToolsCall => "tools/call",
            Method::ResourcesList => "resources/list",
            Method::ResourcesTemplatesList => "resources/templates/list",
            Method::ResourcesRead => "resources/read",
            Method::ResourcesSubscribe => "resources/subscribe",
            Method::ResourcesUnsubscribe => "resources/unsubscribe",
            Method::SubscriptionsListen => "subscriptions/listen",
            Method::PromptsList => "prompts/list",
            Method::PromptsGet => "prompts/get",
            Method::CompletionComplete => "completion/complete",
            Method::LoggingSetLevel => "logging/setLevel",
            Method::TasksGet => "tasks/get",
            Method::TasksList => "tasks/list",
            Method::TasksCancel => "tasks/cancel",
            Method::TasksResult => "tasks/result",
            Method::TasksUpdate => "tasks/update",
            Method::SamplingCreateMessage => "sampling/createMessage",
            Method::ElicitationCreate => "elicitation/create",
            Method::RootsList => "roots/list",
        }
    }

    /// Whether `era` has this method. 2026-07-28 removed `initialize`,
    /// `ping`, `logging/setLevel` and the per-resource subscriptions (a
    /// modern connection answers them -32601); `server/discover`,
    /// `subscriptions/listen` and `tasks/update` are its own. (A handshake
    /// connection may still send `server/discover` first: the session takes
    /// that as choosing 2026-07-28.)
    pub const fn in_era(self, era: Era) -> bool {
        match self {
            Method::Initialize
            | Method::Ping
            | Method::LoggingSetLevel
            | Method::ResourcesSubscribe
            | Method::ResourcesUnsubscribe
            | Method::TasksList
            | Method::TasksResult => matches!(era, Era::Handshake),
            Method::ServerDiscover | Method::SubscriptionsListen | Method::TasksUpdate => {
                matches!(era, Era::Modern)
            }
            _ => true,
        }
    }

    /// Whether this is a `tasks/*` method (the tasks extension).
    pub const fn is_task(self) -> bool {
        matches!(
            self,
            Method::TasksGet
                | Method::TasksList
                | Method::TasksCancel
                | Method::TasksResult
                | Method::TasksUpdate
        )
    }

    /// The param that names what a 2026-07-28 request is about, which its
    /// `Mcp-Name` header must repeat over HTTP.
    pub const fn named_by(self) -> Option<&'static str> {
        match self {
            Method::ToolsCall | Method::PromptsGet => Some("name"),
            Method::ResourcesRead => Some("uri"),
            Method::TasksGet | Method::TasksUpdate | Method::TasksCancel => Some("taskId"),
            _ => None,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A method name no MCP version defines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown method {0:?}")]
pub struct UnknownMethod(pub String);

impl FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| UnknownMethod(name.to_string()))
    }
}

/// A notification method, either direction.
///
/// ```
/// use arbor_mcp::model::NotificationMethod;
///
/// let n: NotificationMethod = "notifications/cancelled".parse().unwrap();
/// assert_eq!(n, NotificationMethod::Cancelled);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotificationMethod {
    /// `notifications/initialized`, client to server (handshake era).
    Initialized,
    /// `notifications/cancelled`.
    Cancelled,
    /// `notifications/progress`.
    Progress,
    /// `notifications/message`: a log message, server to client.
    Message,
    /// `notifications/resources/updated`.
    ResourcesUpdated,
    /// `notifications/resources/list_changed`.
    ResourcesListChanged,
    /// `notifications/tools/list_changed`.
    ToolsListChanged,
    /// `notifications/prompts/list_changed`.
    PromptsListChanged,
    /// `notifications/roots/list_changed`, client to server.
    RootsListChanged,
    /// `notifications/subscriptions/acknowledged` (2026-07-28).
    SubscriptionsAcknowledged,
}

impl NotificationMethod {
    /// Every notification method, in the order above.
    pub const ALL: [NotificationMethod; 10] = [
        NotificationMethod::Initialized,
        NotificationMethod::Cancelled,
        NotificationMethod::Progress,
        NotificationMethod::Message,
        NotificationMethod::ResourcesUpdated,
        NotificationMethod::ResourcesListChanged,
        NotificationMethod::ToolsListChanged,
        NotificationMethod::PromptsListChanged,
        NotificationMethod::RootsListChanged,
        NotificationMethod::SubscriptionsAcknowledged,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationMethod::Initialized => "notifications/initialized",
            NotificationMethod::Cancelled => "notifications/cancelled",
            NotificationMethod::Progress => "notifications/progress",
            NotificationMethod::Message => "notifications/message",
            NotificationMethod::ResourcesUpdated => "notifications/resources/updated",
            NotificationMethod::ResourcesListChanged => "notifications/resources/list_changed",
            NotificationMethod::ToolsListChanged => "notifications/tools/list_changed",
            NotificationMethod::PromptsListChanged => "notifications/prompts/list_changed",
            NotificationMethod::RootsListChanged => "notifications/roots/list_changed",
            NotificationMethod::SubscriptionsAcknowledged => {
                "notifications/subscriptions/acknowledged"
            }
        }
    }
}

impl fmt::Display for NotificationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NotificationMethod {
    type Err = UnknownMethod;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        NotificationMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == name)
            .ok_or_else(|| UnknownMethod(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_method() {
        for m in Method::ALL {
            assert_eq!(m.as_str().parse::<Method>().unwrap(), m);
        }
        for n in NotificationMethod::ALL {
            assert_eq!(n.as_str().parse::<NotificationMethod>().unwrap(), n);
        }
        assert_eq!(
            "Tools/List".parse::<Method>(),
            Err(UnknownMethod("Tools/List".into()))
        );
    }

    #[test]
    fn the_modern_era_has_none_of_the_removed_methods() {
        for m in [
            Method::Initialize,
            Method::Ping,
            Method::LoggingSetLevel,
            Method::ResourcesSubscribe,
            Method::ResourcesUnsubscribe,
        ] {
            assert!(!m.in_era(Era::Modern), "{m}");
            assert!(m.in_era(Era::Handshake), "{m}");
        }
        assert!(Method::ServerDiscover.in_era(Era::Modern));
        assert!(!Method::ServerDiscover.in_era(Era::Handshake));
        assert!(Method::ToolsCall.in_era(Era::Modern) && Method::ToolsCall.in_era(Era::Handshake));
    }
}
