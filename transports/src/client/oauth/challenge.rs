//! `WWW-Authenticate` challenges (RFC 6750 §3, RFC 9728 §5.1): what a
//! 401 or 403 asks for.

/// One Bearer challenge's parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// `resource_metadata`: where the protected-resource metadata is.
    pub(crate) resource_metadata: Option<String>,
    /// `scope`: the scopes the request needs.
    pub(crate) scope: Option<String>,
    /// `error` (`invalid_token`, `insufficient_scope`...).
    pub(crate) error: Option<String>,
}

impl Challenge {
    /// The Bearer or DPoP challenge in `header`, if it is one.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let rest = header.trim();
        let (scheme, params) = rest.split_once(' ').unwrap_or((rest, ""));
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("dpop") {
            return None;
        }
        let mut challenge = Challenge::default();
        for (key, value) in params_of(params) {
            match key.to_ascii_lowercase().as_str() {
                "resource_metadata" => challenge.resource_metadata = Some(value),
                "scope" => challenge.scope = Some(value),
                "error" => challenge.error = Some(value),
                _ => {}
            }
        }
        Some(challenge)
    }
}

/// `key=value` and `key="quoted, value"` pairs, comma separated.
fn params_of(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            return out;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_and_bare_parameters() {
        let c = Challenge::parse(
            r#"Bearer error="insufficient_scope", scope="mcp:read mcp:write", resource_metadata="http://h/.well-known/oauth-protected-resource/mcp""#,
        );
        let c = c.unwrap_or_default();
        assert_eq!(c.scope.as_deref(), Some("mcp:read mcp:write"));
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("http://h/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            Challenge::parse("Bearer error=invalid_token").and_then(|c| c.error),
            Some("invalid_token".into())
        );
        assert_eq!(Challenge::parse("Basic realm=x"), None);
        assert_eq!(
            Challenge::parse(r#"DPoP error="use_dpop_nonce""#).and_then(|c| c.error),
            Some("use_dpop_nonce".into())
        );
        assert_eq!(Challenge::parse("Bearer"), Some(Challenge::default()));
    }
}
