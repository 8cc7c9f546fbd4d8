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

use std::collections::BTreeMap;
use std::fmt::Write as _;

use iri_string::spec::UriSpec;
use iri_string::template::simple_context::{SimpleContext, Value};
use iri_string::template::UriTemplateString;
use regex::{Captures, Regex};

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

// ---------------------------------------------------------------------------
// Syntax (RFC 6570 §2)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Simple,
    Reserved,
    Fragment,
    Label,
    Path,
    Param,
    Query,
    QueryCont,
}

impl Op {
    fn from_char(c: char) -> Option<Self> {
        Some(match c {
            '+' => Self::Reserved,
            '#' => Self::Fragment,
            '.' => Self::Label,
            '/' => Self::Path,
            ';' => Self::Param,
            '?' => Self::Query,
            '&' => Self::QueryCont,
            _ => return None,
        })
    }

    /// The expansion's first string (RFC 6570 appendix A).
    fn first(self) -> &'static str {
        match self {
            Self::Simple | Self::Reserved => "",
            Self::Fragment => "#",
            Self::Label => ".",
            Self::Path => "/",
            Self::Param => ";",
            Self::Query => "?",
            Self::QueryCont => "&",
        }
    }

    /// The separator between values (RFC 6570 appendix A).
    fn sep(self) -> &'static str {
        match self {
            Self::Simple | Self::Reserved | Self::Fragment => ",",
            Self::Label => ".",
            Self::Path => "/",
            Self::Param => ";",
            Self::Query | Self::QueryCont => "&",
        }
    }

    fn allows_reserved(self) -> bool {
        matches!(self, Self::Reserved | Self::Fragment)
    }

    fn is_query(self) -> bool {
        matches!(self, Self::Query | Self::QueryCont)
    }

    /// Decoded values may not contain `/` or `\`.
    fn forbids_separators(self) -> bool {
        matches!(self, Self::Simple | Self::Label | Self::Path | Self::Param)
    }

    /// Decoded values may not hold a `..` piece.
    fn forbids_traversal(self) -> bool {
        !matches!(self, Self::Fragment | Self::Query | Self::QueryCont)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modifier {
    None,
    Prefix(usize),
    Explode,
}

#[derive(Debug, Clone)]
struct VarSpec {
    name: String,
    modifier: Modifier,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Expr { op: Op, vars: Vec<VarSpec> },
}

type SyntaxError = (usize, String);

fn parse_parts(t: &str) -> Result<Vec<Part>, SyntaxError> {
    let bytes = t.as_bytes();
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut iter = t.char_indices();
    while let Some((pos, c)) = iter.next() {
        match c {
            '{' => {
                let close = t[pos..]
                    .find('}')
                    .map(|off| pos + off)
                    .ok_or((pos, "expression is not closed by `}`".to_owned()))?;
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(parse_expr(t, pos + 1, close)?);
                // Skip the expression's body and the closing brace.
                for _ in t[pos + 1..=close].chars() {
                    iter.next();
                }
            }
            '}' => return Err((pos, "`}` outside an expression".to_owned())),
            '%' => {
                if !(is_hex_at(bytes, pos + 1) && is_hex_at(bytes, pos + 2)) {
                    return Err((pos, "`%` not followed by two hex digits".to_owned()));
                }
                literal.push('%');
            }
            c if c.is_control()
                || matches!(c, ' ' | '"' | '\'' | '<' | '>' | '\\' | '^' | '`' | '|') =>
            {
                return Err((pos, format!("character {c:?} is not allowed in a literal")));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

fn is_hex_at(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_some_and(u8::is_ascii_hexdigit)
}

/// Parses the expression body `t[start..end]` (between the braces).
fn parse_expr(t: &str, start: usize, end: usize) -> Result<Part, SyntaxError> {
    let body = &t[start..end];
    let Some(first) = body.chars().next() else {
        return Err((start, "empty expression".to_owned()));
    };
    if matches!(first, '=' | ',' | '!' | '@' | '|') {
        return Err((start, format!("operator `{first}` is reserved")));
    }
    let (op, mut pos) = match Op::from_char(first) {
        Some(op) => (op, start + 1),
        None => (Op::Simple, start),
    };
    let mut vars = Vec::new();
    loop {
        let spec_end = t[pos..end].find(',').map_or(end, |off| pos + off);
        vars.push(parse_varspec(t, pos, spec_end)?);
        if spec_end == end {
            break;
        }
        pos = spec_end + 1;
    }
    Ok(Part::Expr { op, vars })
}

/// Parses the varspec `t[start..end]`.
fn parse_varspec(t: &str, start: usize, end: usize) -> Result<VarSpec, SyntaxError> {
    let bytes = t.as_bytes();
    let mut i = start;
    let mut last_was_dot = true;
    while i < end {
        match bytes[i] {
            b'%' => {
                if !(i + 2 < end && is_hex_at(bytes, i + 1) && is_hex_at(bytes, i + 2)) {
                    return Err((i, "`%` not followed by two hex digits".to_owned()));
                }
                i += 3;
                last_was_dot = false;
            }
            b'.' => {
                if last_was_dot {
                    return Err((i, "misplaced `.` in a variable name".to_owned()));
                }
                i += 1;
                last_was_dot = true;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                i += 1;
                last_was_dot = false;
            }
            _ => break,
        }
    }
    if i == start {
        return Err((start, "expected a variable name".to_owned()));
    }
    if last_was_dot {
        return Err((i - 1, "a variable name cannot end with `.`".to_owned()));
    }
    let name = t[start..i].to_owned();
    let modifier = match bytes.get(i).copied() {
        _ if i == end => Modifier::None,
        Some(b'*') if i + 1 == end => Modifier::Explode,
        Some(b':') => {
            let digits = &t[i + 1..end];
            let valid = (1..=4).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            match digits.parse::<usize>() {
                Ok(n) if valid => Modifier::Prefix(n),
                _ => {
                    return Err((
                        i + 1,
                        "a prefix length must be a number from 1 to 9999".to_owned(),
                    ))
                }
            }
        }
        _ => {
            let c = t[i..end].chars().next().unwrap_or('}');
            return Err((i, format!("unexpected {c:?} in a variable")));
        }
    };
    Ok(VarSpec { name, modifier })
}

// ---------------------------------------------------------------------------
// Matching

const PCT: &str = "%[0-9A-Fa-f]{2}";
const UNRESERVED: &str = r"A-Za-z0-9\-._~";
const UNRESERVED_NO_DOT: &str = r"A-Za-z0-9\-_~";
const RESERVED: &str = r":/?#\[\]@!$&'()*+,;=";
const RESERVED_NO_COMMA: &str = r":/?#\[\]@!$&'()*+;=";

/// What a capture group holds.
#[derive(Debug, Clone)]
struct Capture {
    name: String,
    op: Op,
    modifier: Modifier,
}

/// An order-independent query section.
#[derive(Debug, Clone)]
struct QuerySpec {
    /// `name=value` pairs written literally in the template, raw.
    fixed: Vec<(String, Option<String>)>,
    vars: Vec<VarSpec>,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// One regex over the whole URI.
    Whole { regex: Regex, caps: Vec<Capture> },
    /// A regex before the query, the query's pairs, a regex for the fragment.
    Split {
        head: Regex,
        query: QuerySpec,
        tail: Regex,
        caps: Vec<Capture>,
    },
}

impl Matcher {
    fn build(parts: &[Part]) -> Result<Self, regex::Error> {
        let mut caps = Vec::new();
        if let Some((head, query, tail)) = split_query(parts) {
            let head = compile(&head, &mut caps)?;
            let tail = compile(&tail, &mut caps)?;
            return Ok(Self::Split {
                head,
                query,
                tail,
                caps,
            });
        }
        let regex = compile(parts, &mut caps)?;
        Ok(Self::Whole { regex, caps })
    }

    fn match_uri(&self, uri: &str) -> Result<Option<Variables>, TemplateError> {
        let mut out = Bindings::default();
        match self {
            Self::Whole { regex, caps } => {
                let Some(found) = regex.captures(uri) else {
                    return Ok(None);
                };
                if !bind_captures(&found, caps, &mut out)? {
                    return Ok(None);
                }
            }
            Self::Split {
                head,
                query,
                tail,
                caps,
            } => {
                let frag_at = uri.find('#').unwrap_or(uri.len());
                let (before_frag, fragment) = uri.split_at(frag_at);
                let (path, query_str) = match before_frag.split_once('?') {
                    Some((path, q)) => (path, q),
                    None => (before_frag, ""),
                };
                let (Some(h), Some(t)) = (head.captures(path), tail.captures(fragment)) else {
                    return Ok(None);
                };
                if !bind_captures(&h, caps, &mut out)?
                    || !bind_captures(&t, caps, &mut out)?
                    || !bind_query(query, query_str, &mut out)?
                {
                    return Ok(None);
                }
            }
        }
        Ok(Some(out.0))
    }
}

/// Splits `parts` into (head, query section, tail) when the template ends
/// with query expressions, optionally followed by a fragment.
fn split_query(parts: &[Part]) -> Option<(Vec<Part>, QuerySpec, Vec<Part>)> {
    let q = parts.iter().position(|p| match p {
        Part::Literal(l) => l.contains('?'),
        Part::Expr { op, .. } => op.is_query(),
    })?;
    let mut head: Vec<Part> = parts[..q].to_vec();
    let mut fixed = Vec::new();
    let mut rest = &parts[q..];
    if let Some(Part::Literal(lit)) = rest.first() {
        let (before, after) = lit.split_once('?')?;
        if after.contains('#') {
            return None;
        }
        if !before.is_empty() {
            head.push(Part::Literal(before.to_owned()));
        }
        for pair in after.split('&').filter(|p| !p.is_empty()) {
            fixed.push(match pair.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (pair.to_owned(), None),
            });
        }
        rest = &rest[1..];
        // After a literal `?`, only `{&...}` continues the query.
        if matches!(rest.first(), Some(Part::Expr { op: Op::Query, .. })) {
            return None;
        }
    }
    let mut vars = Vec::new();
    while let Some(Part::Expr { op, vars: specs }) = rest.first() {
        if !op.is_query() {
            break;
        }
        vars.extend(specs.iter().cloned());
        rest = &rest[1..];
    }
    let tail = rest.to_vec();
    let starts_fragment = match tail.first() {
        None => true,
        Some(Part::Expr { op, .. }) => *op == Op::Fragment,
        Some(Part::Literal(l)) => l.starts_with('#'),
    };
    let head_has_fragment = head.iter().any(|p| match p {
        Part::Literal(l) => l.contains('#'),
        Part::Expr { op, .. } => *op == Op::Fragment,
    });
    let tail_has_query = tail
        .iter()
        .any(|p| matches!(p, Part::Expr { op, .. } if op.is_query()));
    if !starts_fragment || head_has_fragment || tail_has_query {
        return None;
    }
    Some((head, QuerySpec { fixed, vars }, tail))
}

/// Compiles parts into an anchored regex, appending its captures to `caps`
/// (group `v{i}` holds capture `i`'s value, `p{i}` whether it is present).
fn compile(parts: &[Part], caps: &mut Vec<Capture>) -> Result<Regex, regex::Error> {
    let mut re = String::from(r"\A");
    for part in parts {
        match part {
            Part::Literal(lit) => push_literal(&mut re, lit),
            Part::Expr { op, vars } => push_expr(&mut re, *op, vars, caps),
        }
    }
    re.push_str(r"\z");
    Regex::new(&re)
}

fn push_literal(re: &mut String, lit: &str) {
    let mut chars = lit.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let hex: String = chars.by_ref().take(2).collect();
            let decoded = u8::from_str_radix(&hex, 16).ok().map(char::from);
            match decoded {
                Some(d) if d.is_ascii_alphanumeric() || "-._~".contains(d) => {
                    let _ = write!(re, "(?:%(?i:{hex})|{})", regex::escape(&d.to_string()));
                }
                _ => {
                    let _ = write!(re, "%(?i:{hex})");
                }
            }
        } else if c.is_ascii() {
            re.push_str(&regex::escape(&c.to_string()));
        } else {
            let mut buf = [0u8; 4];
            let encoded: String = c
                .encode_utf8(&mut buf)
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect();
            let _ = write!(re, "(?:{}|(?i:{encoded}))", regex::escape(&c.to_string()));
        }
    }
}

/// One value character of `op`, as a regex.
fn value_class(op: Op, allow_comma: bool, explode_assoc: bool) -> String {
    let base = if op == Op::Label {
        UNRESERVED_NO_DOT
    } else {
        UNRESERVED
    };
    let extra = match (op.allows_reserved(), allow_comma, explode_assoc) {
        (true, true, _) => RESERVED,
        (true, false, _) => RESERVED_NO_COMMA,
        (false, _, true) => "=",
        (false, _, false) => "",
    };
    format!("(?:[{base}{extra}]|{PCT})")
}

fn push_expr(re: &mut String, op: Op, vars: &[VarSpec], caps: &mut Vec<Capture>) {
    let sep = regex::escape(op.sep());
    let key = format!("(?:[{UNRESERVED}]|{PCT})+");
    let last = vars.len().saturating_sub(1);
    let chained = matches!(op, Op::Simple | Op::Reserved | Op::Fragment);
    if chained {
        let _ = write!(re, "(?:{}", regex::escape(op.first()));
    }
    for (n, var) in vars.iter().enumerate() {
        let i = caps.len();
        caps.push(Capture {
            name: var.name.clone(),
            op,
            modifier: var.modifier,
        });
        let explode = var.modifier == Modifier::Explode;
        let class = value_class(op, n == last, explode);
        let name = regex::escape(&var.name);
        match op {
            Op::Simple | Op::Reserved | Op::Fragment => {
                // The first value needs a character when nothing else shows
                // that the expression is there.
                let quant = if n == 0 && op.first().is_empty() {
                    "+"
                } else {
                    "*"
                };
                let value = if explode {
                    format!("(?:{class}|{sep}){quant}")
                } else {
                    format!("{class}{quant}")
                };
                if n == 0 {
                    let _ = write!(re, "(?P<p{i}>(?P<v{i}>{value}))");
                } else {
                    let _ = write!(re, "(?:{sep}(?P<p{i}>(?P<v{i}>{value})))?");
                }
            }
            Op::Label | Op::Path => {
                let value = if explode {
                    format!("(?:{class}|{sep})*")
                } else {
                    format!("{class}*")
                };
                let _ = write!(re, "(?P<p{i}>{sep}(?P<v{i}>{value}))?");
            }
            Op::Param | Op::Query | Op::QueryCont => {
                let lead = if op == Op::Param {
                    ";".to_owned()
                } else {
                    "[?&]".to_owned()
                };
                if explode {
                    let kv = format!("{key}(?:={class}*)?");
                    let _ = write!(re, "(?P<p{i}>{lead}(?P<v{i}>{kv}(?:{sep}{kv})*))?");
                } else {
                    let _ = write!(re, "(?P<p{i}>{lead}{name}(?:=(?P<v{i}>{class}*))?)?");
                }
            }
        }
    }
    if chained {
        re.push_str(")?");
    }
}

/// Values bound so far; a variable bound twice must get the same value.
#[derive(Debug, Default)]
struct Bindings(Variables);

impl Bindings {
    /// Binds `name`; false if it already holds another value.
    fn bind(&mut self, name: &str, value: TemplateValue) -> bool {
        match self.0.get(name) {
            Some(existing) => *existing == value,
            None => {
                self.0.insert(name, value);
                true
            }
        }
    }
}

/// Percent-decodes `raw` for variable `name`; not UTF-8 is an error.
fn decode(name: &str, raw: &str) -> Result<String, TemplateError> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| TemplateError::InvalidValue {
            name: name.to_owned(),
            value: raw.to_owned(),
            reason: "not UTF-8 once percent-decoded".to_owned(),
        })
}

/// Whether a decoded value is acceptable for `op`.
fn value_ok(op: Op, modifier: Modifier, value: &str) -> bool {
    if op.forbids_separators() && value.contains(['/', '\\']) {
        return false;
    }
    if op.forbids_traversal() && value.split(['/', '\\']).any(|piece| piece == "..") {
        return false;
    }
    match modifier {
        Modifier::Prefix(n) => value.chars().count() <= n,
        Modifier::None | Modifier::Explode => true,
    }
}

/// Binds regex captures; `Ok(false)` if a value is not acceptable.
fn bind_captures(
    found: &Captures<'_>,
    caps: &[Capture],
    out: &mut Bindings,
) -> Result<bool, TemplateError> {
    for (i, cap) in caps.iter().enumerate() {
        if found.name(&format!("p{i}")).is_none() {
            continue;
        }
        let raw = found.name(&format!("v{i}")).map_or("", |m| m.as_str());
        let value = if cap.modifier == Modifier::Explode {
            let Some(value) = explode_value(cap, raw)? else {
                return Ok(false);
            };
            value
        } else {
            let value = decode(&cap.name, raw)?;
            if !value_ok(cap.op, cap.modifier, &value) {
                return Ok(false);
            }
            TemplateValue::String(value)
        };
        if !out.bind(&cap.name, value) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Splits an exploded capture into a list or an assoc value.
fn explode_value(cap: &Capture, raw: &str) -> Result<Option<TemplateValue>, TemplateError> {
    let items: Vec<&str> = raw.split(cap.op.sep()).collect();
    let named = matches!(cap.op, Op::Param | Op::Query | Op::QueryCont);
    let mut pairs = Vec::new();
    let mut list = Vec::new();
    for item in &items {
        match item.split_once('=') {
            Some((k, v)) if named || !cap.op.allows_reserved() => {
                pairs.push((decode(&cap.name, k)?, decode(&cap.name, v)?));
            }
            _ if named => pairs.push((decode(&cap.name, item)?, String::new())),
            _ => list.push(decode(&cap.name, item)?),
        }
    }
    let value = if named {
        if pairs.iter().all(|(k, _)| *k == cap.name) {
            TemplateValue::List(pairs.into_iter().map(|(_, v)| v).collect())
        } else {
            TemplateValue::Assoc(pairs)
        }
    } else if pairs.is_empty() {
        TemplateValue::List(list)
    } else if list.is_empty() {
        TemplateValue::Assoc(pairs)
    } else {
        return Ok(None);
    };
    let ok = match &value {
        TemplateValue::Assoc(pairs) => pairs
            .iter()
            .all(|(k, v)| value_ok(cap.op, cap.modifier, k) && value_ok(cap.op, cap.modifier, v)),
        other => other
            .strings()
            .iter()
            .all(|v| value_ok(cap.op, cap.modifier, v)),
    };
    Ok(ok.then_some(value))
}

/// Binds the query section's variables from the URI's query string; `Ok(false)`
/// if the query is not one the template describes.
fn bind_query(spec: &QuerySpec, query: &str, out: &mut Bindings) -> Result<bool, TemplateError> {
    let pairs: Vec<(&str, Option<&str>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (p, None),
        })
        .collect();
    let mut claimed = vec![false; pairs.len()];
    for (key, value) in &spec.fixed {
        let found = pairs.iter().enumerate().position(|(i, (k, v))| {
            !claimed[i] && k == key && v.unwrap_or("") == value.as_deref().unwrap_or("")
        });
        match found {
            Some(i) => claimed[i] = true,
            None => return Ok(false),
        }
    }
    let mut absorbers = Vec::new();
    for var in &spec.vars {
        let hits: Vec<usize> = (0..pairs.len())
            .filter(|&i| !claimed[i] && pairs[i].0 == var.name)
            .collect();
        if var.modifier == Modifier::Explode {
            if hits.is_empty() {
                absorbers.push(var);
                continue;
            }
            let mut items = Vec::new();
            for &i in &hits {
                claimed[i] = true;
                items.push(decode(&var.name, pairs[i].1.unwrap_or(""))?);
            }
            if !out.bind(&var.name, TemplateValue::List(items)) {
                return Ok(false);
            }
            continue;
        }
        match hits.as_slice() {
            [] => {}
            [i] => {
                claimed[*i] = true;
                let value = decode(&var.name, pairs[*i].1.unwrap_or(""))?;
                if !value_ok(Op::Query, var.modifier, &value)
                    || !out.bind(&var.name, TemplateValue::String(value))
                {
                    return Ok(false);
                }
            }
            _ => return Ok(false),
        }
    }
    let leftovers: Vec<usize> = (0..pairs.len()).filter(|&i| !claimed[i]).collect();
    if leftovers.is_empty() {
        return Ok(true);
    }
    let Some(absorber) = absorbers.first() else {
        return Ok(false);
    };
    let mut assoc = Vec::new();
    for i in leftovers {
        let (k, v) = pairs[i];
        assoc.push((
            decode(&absorber.name, k)?,
            decode(&absorber.name, v.unwrap_or(""))?,
        ));
    }
    Ok(out.bind(&absorber.name, TemplateValue::Assoc(assoc)))
}
