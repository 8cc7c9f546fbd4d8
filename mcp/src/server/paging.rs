//! Paged lists: `tools/list` and its kind cut into pages, with sealed
//! cursors.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::jsonrpc::ErrorObject;

use super::McpServer;
use crate::model::params::{parse, ListParams};

/// A paged list: the name of its field in the result, and in the cursors
/// it issues (so a cursor of one list opens no other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum Listing {
    Tools,
    Resources,
    ResourceTemplates,
    Prompts,
}

impl Listing {
    /// The kind of list it is (templates are listed with resources).
    pub(super) fn kind(self) -> crate::ListKind {
        match self {
            Listing::Tools => crate::ListKind::Tools,
            Listing::Resources | Listing::ResourceTemplates => crate::ListKind::Resources,
            Listing::Prompts => crate::ListKind::Prompts,
        }
    }

    fn field(self) -> &'static str {
        match self {
            Listing::Tools => "tools",
            Listing::Resources => "resources",
            Listing::ResourceTemplates => "resourceTemplates",
            Listing::Prompts => "prompts",
        }
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct CursorState {
    pub(super) list: Listing,
    pub(super) offset: usize,
}

pub(super) const CURSOR_PURPOSE: &str = "cursor";

impl McpServer {
    pub(super) fn page(
        &self,
        list: Listing,
        params: &Map<String, Value>,
        all: Vec<&Value>,
    ) -> Result<Value, ErrorObject> {
        let ListParams { cursor } = parse(params.clone())?;
        let offset = match cursor {
            None => 0,
            Some(cursor) => self.open_cursor(list, &cursor)?,
        };
        if offset > all.len() {
            return Err(ErrorObject::invalid_params("cursor out of range")
                .with_data(json!({ "cursor": "stale" })));
        }
        let size = self.inner.config.page_size.max(1);
        let end = (offset + size).min(all.len());
        let mut result = Map::new();
        result.insert(
            list.field().into(),
            Value::Array(all[offset..end].iter().map(|v| (*v).clone()).collect()),
        );
        if end < all.len() {
            let state = CursorState { list, offset: end };
            let payload =
                serde_json::to_vec(&state).map_err(|e| ErrorObject::internal(e.to_string()))?;
            let cursor =
                self.inner
                    .sealer
                    .seal(CURSOR_PURPOSE, &payload, self.inner.config.cursor_ttl);
            result.insert("nextCursor".into(), cursor.into());
        }
        Ok(Value::Object(result))
    }

    pub(super) fn open_cursor(&self, list: Listing, cursor: &str) -> Result<usize, ErrorObject> {
        let bad = |why: &str| {
            ErrorObject::invalid_params(format!("invalid cursor: {why}"))
                .with_data(json!({ "cursor": cursor }))
        };
        let payload = self
            .inner
            .sealer
            .open(CURSOR_PURPOSE, cursor)
            .map_err(|e| bad(&e.to_string()))?;
        let state: CursorState = serde_json::from_slice(&payload).map_err(|_| bad("unreadable"))?;
        if state.list != list {
            return Err(bad("issued for another list"));
        }
        Ok(state.offset)
    }
}
