//! Icons of tools, resources, prompts and implementations.

use serde::{Deserialize, Serialize};

/// An icon a client may show: an `https:` URL or a `data:` URI.
///
/// # Examples
/// ```
/// use arbor_mcp::model::Icon;
///
/// let icon = Icon::new("https://example.com/tool.png").mime_type("image/png");
/// assert!(icon.problem().is_none());
/// assert!(Icon::new("javascript:alert(1)").problem().is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Icon {
    /// Where it is: `https:` or `data:`.
    pub src: String,
    /// Its MIME type (`image/png`, `image/svg+xml`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The sizes it comes in (`48x48`, `any`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<String>,
    /// The theme it suits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<IconTheme>,
}

/// The background an icon is drawn for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IconTheme {
    /// A light background.
    Light,
    /// A dark background.
    Dark,
}

impl Icon {
    /// An icon at `src`.
    pub fn new(src: impl Into<String>) -> Self {
        Icon {
            src: src.into(),
            mime_type: None,
            sizes: Vec::new(),
            theme: None,
        }
    }

    /// With its MIME type.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// With a size it comes in (`48x48`, `any`).
    pub fn size(mut self, size: impl Into<String>) -> Self {
        self.sizes.push(size.into());
        self
    }

    /// For a theme.
    pub fn theme(mut self, theme: IconTheme) -> Self {
        self.theme = Some(theme);
        self
    }

    /// Why a client should not load this icon, if it should not: a source
    /// that is neither `https:` nor a `data:` URI (the specification's
    /// advice, so an icon cannot be a tracking pixel over plain HTTP or run
    /// script), a malformed MIME type or size.
    pub fn problem(&self) -> Option<String> {
        let src = self.src.trim();
        let lower = src.to_ascii_lowercase();
        if let Some(data) = lower.strip_prefix("data:") {
            let media = data.split([';', ',']).next().unwrap_or_default();
            if !data.contains(',') || !is_mime(media) {
                return Some(format!("malformed data URI: {}", clip(src)));
            }
        } else if !lower.starts_with("https://") || lower.len() == "https://".len() {
            return Some(format!(
                "icon source must be https: or data:, got {}",
                clip(src)
            ));
        }
        if let Some(mime) = self.mime_type.as_deref().filter(|m| !is_mime(m)) {
            return Some(format!("malformed MIME type: {mime}"));
        }
        self.sizes
            .iter()
            .find(|s| !is_size(s))
            .map(|s| format!("malformed icon size {s:?}: WxH or any"))
    }
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `type/subtype`, each a token (RFC 6838's restricted names).
fn is_mime(m: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.len() <= 127
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    matches!(m.split_once('/'), Some((t, s)) if token(t) && token(s))
}

fn is_size(s: &str) -> bool {
    s == "any"
        || matches!(s.split_once(['x', 'X']), Some((w, h))
            if !w.is_empty() && !h.is_empty()
                && w.bytes().all(|b| b.is_ascii_digit())
                && h.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_data_icons_pass_and_others_are_refused() {
        assert_eq!(Icon::new("https://example.com/a.png").problem(), None);
        assert_eq!(
            Icon::new("data:image/png;base64,iVBORw0KGgo=").problem(),
            None
        );
        for bad in [
            "http://example.com/a.png",
            "https://",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:,nomime",
            "data:image/png;base64",
            "",
        ] {
            assert!(Icon::new(bad).problem().is_some(), "{bad} passed");
        }
        let icon = Icon::new("https://example.com/a.png");
        assert!(icon.clone().mime_type("png").problem().is_some());
        assert!(icon.clone().mime_type("image/png").problem().is_none());
        assert!(icon.clone().size("48x48").size("any").problem().is_none());
        assert!(icon.size("big").problem().is_some());
    }
}
