//! RFC 6570 URI templates for MCP resource templates: parse, expand, match.
//!
//! [`UriTemplate::parse`] accepts the full level 1–4 expression syntax
//! (`{var}`, `{+var}`, `{#var}`, `{.var}`, `{/var}`, `{;var}`, `{?var,x}`,
//! `{&var}`, explode `*` and prefix `:n`) and reports a malformed template
//! with the byte position. [`UriTemplate::expand`] is RFC 6570 expansion (by
//! the `iri-string` crate). [`UriTemplate::match_uri`] is the inverse that an
//! MCP server needs for `resources/read`: `users://42/profile` against
//! `users://{id}/profile` gives `id = "42"`.
//!
//! # Matching
//!
//! RFC 6570 defines expansion only; matching here follows it as follows.
//!
//! - Captured values are percent-decoded.
//! - `{var}`, `{.var}`, `{/var}` and `{;var}` values cannot contain a `/` or
//!   `\` once decoded (expansion would have encoded them, so `a%2Fb` is not a
//!   match), and no value outside the query may hold a `..` piece (`..`,
//!   `../x`, `a/../b`): such a URI is not a match.
//! - Query expressions (`{?q,page}`, `{&x}`) at the end of the template, with
//!   any fixed `name=value` pairs written literally after a `?`, match the
//!   URI's query parameters in any order. A parameter the template does not
//!   name is not a match unless an exploded query variable (`{?rest*}`)
//!   collects the leftovers as an associative value; a named parameter given
//!   twice is not a match unless the variable is exploded.
//! - An exploded path-like variable (`{/path*}`, `{.dom*}`, `{list*}`) matches
//!   any number of items and yields a list (or an associative value when every
//!   item is `key=value`); `{;list*}` likewise.
//! - Where the template is ambiguous (`{x,y}` with one value), values go to
//!   variables from left to right, each taking as much as it can. In
//!   `{+x,y}` only the last variable may contain `,`, and in `{.x}` a value
//!   cannot contain `.`.
//! - Literal text matches as written, a percent-encoded triplet also in the
//!   other hex case or, for an unreserved character, decoded. Match against a
//!   [`ResourceUri`](crate::uri::ResourceUri)'s normal form, where scheme and
//!   host are lowercase.
//!
//! # Constraints
//!
//! A [`TemplateVar`] attached with [`UriTemplate::with_var`] restricts a
//! variable's values (a regex they must match whole, a maximum length, or
//! presence). Expansion and matching both check it and return
//! [`TemplateError::InvalidValue`] or [`TemplateError::MissingVariable`].

mod matching;
mod syntax;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use iri_string::spec::UriSpec;
use iri_string::template::simple_context::{SimpleContext, Value};
use iri_string::template::UriTemplateString;
use regex::Regex;

use matching::Matcher;
use syntax::{parse_parts, Modifier, Part};

/// Why a template, a constraint or a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template does not follow RFC 6570 syntax.
    #[error("uri template `{template}` is malformed at byte {position}: {reason}")]
    Malformed {
        /// The template.
        template: String,
        /// Byte offset in the template where the fault is.
        position: usize,
        /// What is wrong there.
        reason: String,
    },
    /// A constraint names a variable the template does not have.
    #[error("uri template `{template}` has no variable `{name}`")]
    UnknownVariable {
        /// The template.
        template: String,
        /// The variable named by the constraint.
        name: String,
    },
    /// A constraint's pattern is not a valid regex.
    #[error("template variable `{name}` pattern `{pattern}` is not a valid regex: {reason}")]
    InvalidPattern {
        /// The variable.
        name: String,
        /// The pattern as given.
        pattern: String,
        /// The regex compiler's message.
        reason: String,
    },
    /// A required variable has no value.
    #[error("template variable `{name}` is required but has no value")]
    MissingVariable {
        /// The variable.
        name: String,
    },
    /// A value breaks the variable's constraint, or cannot be used.
    #[error("template variable `{name}` value `{value}` is invalid: {reason}")]
    InvalidValue {
        /// The variable.
        name: String,
        /// The (decoded) value, or the offending item of a list.
        value: String,
        /// Which rule it breaks.
        reason: String,
    },
}

/// The value of a template variable (RFC 6570 §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateValue {
    /// A string.
    String(String),
    /// A list of strings.
    List(Vec<String>),
    /// An associative array: (key, value) pairs in order.
    Assoc(Vec<(String, String)>),
}

impl TemplateValue {
    /// The value if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            Self::List(_) | Self::Assoc(_) => None,
        }
    }

    /// Every string in the value (for assoc, the values).
    fn strings(&self) -> Vec<&str> {
        match self {
            Self::String(s) => vec![s.as_str()],
            Self::List(items) => items.iter().map(String::as_str).collect(),
            Self::Assoc(pairs) => pairs.iter().map(|(_, v)| v.as_str()).collect(),
        }
    }
}

impl From<&str> for TemplateValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for TemplateValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<Vec<String>> for TemplateValue {
    fn from(items: Vec<String>) -> Self {
        Self::List(items)
    }
}

impl From<Vec<&str>> for TemplateValue {
    fn from(items: Vec<&str>) -> Self {
        Self::List(items.into_iter().map(str::to_owned).collect())
    }
}

impl From<Vec<(String, String)>> for TemplateValue {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self::Assoc(pairs)
    }
}

impl From<Vec<(&str, &str)>> for TemplateValue {
    fn from(pairs: Vec<(&str, &str)>) -> Self {
        Self::Assoc(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}

/// Variable values, by name: the input of expansion, the output of matching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables(BTreeMap<String, TemplateValue>);

impl Variables {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a variable, returning its previous value.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        value: impl Into<TemplateValue>,
    ) -> Option<TemplateValue> {
        self.0.insert(name.into(), value.into())
    }

    /// Sets a variable (builder form).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<TemplateValue>) -> Self {
        self.insert(name, value);
        self
    }

    /// The value of a variable.
    pub fn get(&self, name: &str) -> Option<&TemplateValue> {
        self.0.get(name)
    }

    /// The value of a variable if it is a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(TemplateValue::as_str)
    }

    /// The variables, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TemplateValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many variables have a value.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no variable has a value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<TemplateValue>> FromIterator<(K, V)> for Variables {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// Constraints on one template variable's values.
#[derive(Debug, Clone)]
pub struct TemplateVar {
    name: String,
    pattern: Option<(String, Regex)>,
    max_len: Option<usize>,
    required: bool,
}

impl TemplateVar {
    /// No constraint yet on variable `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            pattern: None,
            max_len: None,
            required: false,
        }
    }

    /// Each (decoded) value must match `pattern` as a whole (it is anchored).
    pub fn pattern(mut self, pattern: &str) -> Result<Self, TemplateError> {
        let regex = Regex::new(&format!(r"\A(?:{pattern})\z")).map_err(|e| {
            TemplateError::InvalidPattern {
                name: self.name.clone(),
                pattern: pattern.to_owned(),
                reason: e.to_string(),
            }
        })?;
        self.pattern = Some((pattern.to_owned(), regex));
        Ok(self)
    }

    /// Each (decoded) value may have at most `max` characters.
    pub fn max_len(mut self, max: usize) -> Self {
        self.max_len = Some(max);
        self
    }

    /// The variable must have a value (expansion and matching).
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, value: Option<&TemplateValue>) -> Result<(), TemplateError> {
        let Some(value) = value else {
            return if self.required {
                Err(TemplateError::MissingVariable {
                    name: self.name.clone(),
                })
            } else {
                Ok(())
            };
        };
        for item in value.strings() {
            if let Some(max) = self.max_len {
                let len = item.chars().count();
                if len > max {
                    return Err(self.invalid(item, format!("{len} characters, over {max}")));
                }
            }
            if let Some((pattern, regex)) = &self.pattern {
                if !regex.is_match(item) {
                    return Err(self.invalid(item, format!("does not match `{pattern}`")));
                }
            }
        }
        Ok(())
    }

    fn invalid(&self, value: &str, reason: String) -> TemplateError {
        TemplateError::InvalidValue {
            name: self.name.clone(),
            value: value.to_owned(),
            reason,
        }
    }
}

/// A parsed RFC 6570 URI template with optional per-variable constraints.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    source: String,
    parts: Vec<Part>,
    constraints: Vec<TemplateVar>,
    expander: UriTemplateString,
    matcher: Matcher,
}

/// On the wire a template is its text; constraints on variables are the
/// server's own and are not sent.
impl serde::Serialize for UriTemplate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for UriTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        UriTemplate::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl UriTemplate {
    /// Parses `template`; a syntax fault is [`TemplateError::Malformed`] with
    /// its byte position.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let malformed = |position: usize, reason: String| TemplateError::Malformed {
            template: template.to_owned(),
            position,
            reason,
        };
        let parts = parse_parts(template).map_err(|(pos, reason)| malformed(pos, reason))?;
        let expander =
            UriTemplateString::try_from(template).map_err(|e| malformed(0, e.to_string()))?;
        let matcher = Matcher::build(&parts)
            .map_err(|e| malformed(0, format!("cannot build the matcher: {e}")))?;
        Ok(Self {
            source: template.to_owned(),
            parts,
            constraints: Vec::new(),
            expander,
            matcher,
        })
    }

    /// Adds constraints on one of the template's variables (replacing earlier
    /// ones on it).
    pub fn with_var(mut self, var: TemplateVar) -> Result<Self, TemplateError> {
        if !self.variables().any(|name| name == var.name) {
            return Err(TemplateError::UnknownVariable {
                template: self.source.clone(),
                name: var.name,
            });
        }
        self.constraints.retain(|c| c.name != var.name);
        self.constraints.push(var);
        Ok(self)
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The variable names, in order of first appearance.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        let mut seen: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Expr { vars, .. } = part {
                for var in vars {
                    if !seen.contains(&var.name.as_str()) {
                        seen.push(&var.name);
                    }
                }
            }
        }
        seen.into_iter()
    }

    /// Expands the template with `vars` (RFC 6570 §3), after checking the
    /// constraints. Variables without a value are undefined.
    pub fn expand(&self, vars: &Variables) -> Result<String, TemplateError> {
        self.check(vars)?;
        let mut context = SimpleContext::new();
        for (name, value) in vars.iter() {
            let value = match value {
                TemplateValue::String(s) => Value::String(s.clone()),
                TemplateValue::List(items) => Value::List(items.clone()),
                TemplateValue::Assoc(pairs) => Value::Assoc(pairs.clone()),
            };
            context.insert(name, value);
        }
        let expanded = self
            .expander
            .expand::<UriSpec, _>(&context)
            .map_err(|e| self.expansion_error(vars, e.to_string()))?;
        let mut out = String::new();
        write!(out, "{expanded}").map_err(|e| self.expansion_error(vars, e.to_string()))?;
        Ok(out)
    }

    /// Matches a concrete URI against the template: `Ok(Some(vars))` with the
    /// decoded values, `Ok(None)` if the URI is not one the template
    /// describes, `Err` if it is but a value breaks a constraint.
    pub fn match_uri(&self, uri: &str) -> Result<Option<Variables>, TemplateError> {
        let Some(vars) = self.matcher.match_uri(uri)? else {
            return Ok(None);
        };
        self.check(&vars)?;
        Ok(Some(vars))
    }

    fn check(&self, vars: &Variables) -> Result<(), TemplateError> {
        self.constraints
            .iter()
            .try_for_each(|c| c.check(vars.get(&c.name)))
    }

    /// Names the variable behind an expansion failure: the only one
    /// `iri-string` reports is a prefix modifier on a list or assoc value.
    fn expansion_error(&self, vars: &Variables, reason: String) -> TemplateError {
        let culprit = self.parts.iter().find_map(|part| match part {
            Part::Expr { vars: specs, .. } => specs.iter().find(|spec| {
                matches!(spec.modifier, Modifier::Prefix(_))
                    && vars.get(&spec.name).is_some_and(|v| v.as_str().is_none())
            }),
            Part::Literal(_) => None,
        });
        TemplateError::InvalidValue {
            name: culprit.map(|s| s.name.clone()).unwrap_or_default(),
            value: String::new(),
            reason: if culprit.is_some() {
                "a prefix modifier applies to string values only".to_owned()
            } else {
                reason
            },
        }
    }
}

impl std::fmt::Display for UriTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for UriTemplate {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
