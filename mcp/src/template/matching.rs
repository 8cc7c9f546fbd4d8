//! Matching a URI against a template: the template compiled to a regex
//! (with the query matched apart, in any order), captures decoded and
//! bound to variables.

use std::fmt::Write as _;

use regex::{Captures, Regex};

use super::syntax::{Modifier, Op, Part, VarSpec};
use super::{TemplateError, TemplateValue, Variables};

pub(super) const PCT: &str = "%[0-9A-Fa-f]{2}";
pub(super) const UNRESERVED: &str = r"A-Za-z0-9\-._~";
pub(super) const UNRESERVED_NO_DOT: &str = r"A-Za-z0-9\-_~";
pub(super) const RESERVED: &str = r":/?#\[\]@!$&'()*+,;=";
pub(super) const RESERVED_NO_COMMA: &str = r":/?#\[\]@!$&'()*+;=";

/// What a capture group holds.
#[derive(Debug, Clone)]
pub(super) struct Capture {
    pub(super) name: String,
    pub(super) op: Op,
    pub(super) modifier: Modifier,
}

/// An order-independent query section.
#[derive(Debug, Clone)]
pub(super) struct QuerySpec {
    /// `name=value` pairs written literally in the template, raw.
    pub(super) fixed: Vec<(String, Option<String>)>,
    pub(super) vars: Vec<VarSpec>,
}

#[derive(Debug, Clone)]
pub(super) enum Matcher {
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
    pub(super) fn build(parts: &[Part]) -> Result<Self, regex::Error> {
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

    pub(super) fn match_uri(&self, uri: &str) -> Result<Option<Variables>, TemplateError> {
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
pub(super) fn split_query(parts: &[Part]) -> Option<(Vec<Part>, QuerySpec, Vec<Part>)> {
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
pub(super) fn compile(parts: &[Part], caps: &mut Vec<Capture>) -> Result<Regex, regex::Error> {
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

pub(super) fn push_literal(re: &mut String, lit: &str) {
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
pub(super) fn value_class(op: Op, allow_comma: bool, explode_assoc: bool) -> String {
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

pub(super) fn push_expr(re: &mut String, op: Op, vars: &[VarSpec], caps: &mut Vec<Capture>) {
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
pub(super) struct Bindings(Variables);

impl Bindings {
    /// Binds `name`; false if it already holds another value.
    pub(super) fn bind(&mut self, name: &str, value: TemplateValue) -> bool {
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
pub(super) fn decode(name: &str, raw: &str) -> Result<String, TemplateError> {
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
pub(super) fn value_ok(op: Op, modifier: Modifier, value: &str) -> bool {
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
pub(super) fn bind_captures(
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
pub(super) fn explode_value(
    cap: &Capture,
    raw: &str,
) -> Result<Option<TemplateValue>, TemplateError> {
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
pub(super) fn bind_query(
    spec: &QuerySpec,
    query: &str,
    out: &mut Bindings,
) -> Result<bool, TemplateError> {
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
