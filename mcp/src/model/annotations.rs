//! Annotations on content and resources: who a thing is for, how much it
//! matters, when it last changed.

use serde::{Deserialize, Serialize};

use super::Role;

/// Hints on a content block or a resource, for the client to weigh.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    /// Whom it is meant for: the user, the assistant, or both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<Role>,
    /// How much it matters, from 0 (least) to 1 (most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<f64>,
    /// When it last changed (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Annotations {
    /// Annotations for `audience`.
    pub fn for_audience(audience: impl IntoIterator<Item = Role>) -> Self {
        Annotations {
            audience: audience.into_iter().collect(),
            ..Annotations::default()
        }
    }

    /// With this priority.
    pub fn priority(mut self, priority: f64) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Why these annotations are invalid, if they are: a priority outside
    /// 0 to 1.
    pub(crate) fn problem(&self) -> Option<String> {
        self.priority
            .filter(|p| !(0.0..=1.0).contains(p))
            .map(|p| format!("priority {p} is outside 0..=1"))
    }
}
