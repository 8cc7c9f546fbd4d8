//! The lists whose changes clients can follow.

use super::method::NotificationMethod;

/// A list whose changes clients can follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list` and `resources/templates/list`.
    Resources,
}

impl ListKind {
    /// Every kind.
    pub const ALL: [ListKind; 3] = [ListKind::Tools, ListKind::Prompts, ListKind::Resources];

    /// The notification that says the list changed.
    pub fn notification(self) -> NotificationMethod {
        match self {
            ListKind::Tools => NotificationMethod::ToolsListChanged,
            ListKind::Prompts => NotificationMethod::PromptsListChanged,
            ListKind::Resources => NotificationMethod::ResourcesListChanged,
        }
    }

    /// The `subscriptions/listen` filter field that asks for it.
    pub fn filter(self) -> &'static str {
        match self {
            ListKind::Tools => "toolsListChanged",
            ListKind::Prompts => "promptsListChanged",
            ListKind::Resources => "resourcesListChanged",
        }
    }
}
