//! SEP-2243 `x-mcp-header`: tool parameters that HTTP clients mirror into
//! `Mcp-Param-{Name}` headers, so intermediaries can route on them. Found
//! once, when the tool is declared; a tool whose annotations break the
//! rules is refused then, since clients must drop such a tool.

use serde_json::Value;

/// One parameter mirrored into a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamHeader {
    /// The header's name after `Mcp-Param-`.
    pub name: String,
    /// The property names leading to the parameter from the arguments.
    pub path: Vec<String>,
}

impl ParamHeader {
    /// The parameter's value in `arguments`, if present.
    pub fn lookup<'a>(&self, arguments: &'a Value) -> Option<&'a Value> {
        self.path
            .iter()
            .try_fold(arguments, |value, key| value.get(key))
    }

    /// The header value the parameter's value in `arguments` calls for:
    /// `None` when it is absent or null (the header is then omitted).
    pub fn value_in(&self, arguments: &Value) -> Option<String> {
        match self.lookup(arguments)? {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.to_string(),
                (_, Some(u), _) => u.to_string(),
                // 42.0 is the integer 42.
                (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                    format!("{f:.0}")
                }
                _ => n.to_string(),
            }),
            _ => None,
        }
    }
}

/// Whether `name` is an RFC 9110 token.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The parameters of an input schema marked with `x-mcp-header`, reachable
/// from the root through `properties` only.
///
/// # Errors
/// Why the annotations are invalid: a name that is not a token, a duplicate
/// (case-insensitively), or a parameter that is not a string, integer or
/// boolean.
pub(crate) fn param_headers(schema: &Value) -> Result<Vec<ParamHeader>, String> {
    let mut found = Vec::new();
    walk(schema, &mut Vec::new(), &mut found)?;
    Ok(found)
}

fn walk(
    schema: &Value,
    path: &mut Vec<String>,
    found: &mut Vec<ParamHeader>,
) -> Result<(), String> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (key, property) in properties {
        path.push(key.clone());
        if let Some(name) = property.get("x-mcp-header") {
            let name = name
                .as_str()
                .filter(|n| is_token(n))
                .ok_or_else(|| format!("x-mcp-header of {path:?} must be a non-empty token"))?;
            if found.iter().any(|h| h.name.eq_ignore_ascii_case(name)) {
                return Err(format!("x-mcp-header {name:?} is declared twice"));
            }
            let primitive = property
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| matches!(t, "string" | "integer" | "boolean"));
            if !primitive {
                return Err(format!(
                    "x-mcp-header {name:?} must be on a string, integer or boolean parameter"
                ));
            }
            found.push(ParamHeader {
                name: name.to_string(),
                path: path.clone(),
            });
        }
        walk(property, path, found)?;
        path.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nested_headers_and_renders_values() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "opts": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}},
        }});
        let found = param_headers(&schema).unwrap_or_default();
        assert_eq!(found.len(), 2);
        let args = json!({"region": "eu", "opts": {"n": 42.0}});
        let values: Vec<_> = found.iter().map(|h| h.value_in(&args)).collect();
        assert!(values.contains(&Some("eu".into())));
        assert!(values.contains(&Some("42".into())));
        assert_eq!(found[0].value_in(&json!({"region": null})), None);
    }

    #[test]
    fn refuses_invalid_annotations() {
        for bad in [
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "has space"}}}),
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"}, "b": {"type": "string", "x-mcp-header": "a"}}}),
        ] {
            assert!(param_headers(&bad).is_err(), "{bad}");
        }
    }
}
