//! 2026-07-28 caching hints (`ttlMs`, `cacheScope`) on cacheable results:
//! `server/discover`, the four lists and `resources/read`.
//!
//! The default for everything is [`CacheHint::NONE`] (`ttlMs: 0`, private):
//! lists change when the catalog does (`add_tool`, `remove_resource`), and a
//! resource may change under its reader (a subscribable one surely does). A
//! server says what may be cached, and for how long, per list in
//! [`ListCaching`] and per resource or template with
//! [`ServerBuilder::cache_resource`](crate::ServerBuilder::cache_resource).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::model::Method;

/// Who may reuse a cached result (`cacheScope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Any client, shared gateway or caching proxy.
    Public,
    /// Only within the same authorization context.
    Private,
}

/// How long a result stays fresh, and for whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheHint {
    /// Fresh for this long after it is received (`ttlMs`); zero: stale at once.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Who may reuse it.
    pub scope: CacheScope,
}

impl CacheHint {
    /// Not to be reused: `ttlMs: 0`, `cacheScope: "private"`. The default.
    pub const NONE: CacheHint = CacheHint {
        ttl: Duration::ZERO,
        scope: CacheScope::Private,
    };

    /// Reusable by anyone for `ttl`.
    pub fn public(ttl: Duration) -> Self {
        CacheHint {
            ttl,
            scope: CacheScope::Public,
        }
    }

    /// Reusable for `ttl` within one authorization context.
    pub fn private(ttl: Duration) -> Self {
        CacheHint {
            ttl,
            scope: CacheScope::Private,
        }
    }

    /// Writes the hint into a result, unless it already has one.
    pub(crate) fn apply(self, result: &mut Map<String, Value>) {
        let ttl = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        result.entry("ttlMs").or_insert_with(|| ttl.into());
        let scope = match self.scope {
            CacheScope::Public => "public",
            CacheScope::Private => "private",
        };
        result.entry("cacheScope").or_insert_with(|| scope.into());
    }
}

impl Default for CacheHint {
    fn default() -> Self {
        CacheHint::NONE
    }
}

/// The hints of the results that describe the catalog.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListCaching {
    /// `server/discover`.
    pub discover: CacheHint,
    /// `tools/list`.
    pub tools: CacheHint,
    /// `prompts/list`.
    pub prompts: CacheHint,
    /// `resources/list`.
    pub resources: CacheHint,
    /// `resources/templates/list`.
    pub templates: CacheHint,
}

impl ListCaching {
    /// The hint for a cacheable method's result (`resources/read` takes the
    /// one of the resource read, set where it is read).
    pub(crate) fn for_method(&self, method: Method) -> Option<CacheHint> {
        match method {
            Method::ServerDiscover => Some(self.discover),
            Method::ToolsList => Some(self.tools),
            Method::PromptsList => Some(self.prompts),
            Method::ResourcesList => Some(self.resources),
            Method::ResourcesTemplatesList => Some(self.templates),
            Method::ResourcesRead => Some(CacheHint::NONE),
            _ => None,
        }
    }
}
