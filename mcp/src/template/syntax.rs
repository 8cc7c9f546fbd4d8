//! The template syntax (RFC 6570 §2): operators, variable specs, and a
//! template parsed into literal and expression parts.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
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
    pub(super) fn from_char(c: char) -> Option<Self> {
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
    pub(super) fn first(self) -> &'static str {
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
    pub(super) fn sep(self) -> &'static str {
        match self {
            Self::Simple | Self::Reserved | Self::Fragment => ",",
            Self::Label => ".",
            Self::Path => "/",
            Self::Param => ";",
            Self::Query | Self::QueryCont => "&",
        }
    }

    pub(super) fn allows_reserved(self) -> bool {
        matches!(self, Self::Reserved | Self::Fragment)
    }

    pub(super) fn is_query(self) -> bool {
        matches!(self, Self::Query | Self::QueryCont)
    }

    /// Decoded values may not contain `/` or `\`.
    pub(super) fn forbids_separators(self) -> bool {
        matches!(self, Self::Simple | Self::Label | Self::Path | Self::Param)
    }

    /// Decoded values may not hold a `..` piece.
    pub(super) fn forbids_traversal(self) -> bool {
        !matches!(self, Self::Fragment | Self::Query | Self::QueryCont)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Modifier {
    None,
    Prefix(usize),
    Explode,
}

#[derive(Debug, Clone)]
pub(super) struct VarSpec {
    pub(super) name: String,
    pub(super) modifier: Modifier,
}

#[derive(Debug, Clone)]
pub(super) enum Part {
    Literal(String),
    Expr { op: Op, vars: Vec<VarSpec> },
}

pub(super) type SyntaxError = (usize, String);

pub(super) fn parse_parts(t: &str) -> Result<Vec<Part>, SyntaxError> {
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

pub(super) fn is_hex_at(bytes: &[u8], i: usize) -> bool {
    bytes.get(i).is_some_and(u8::is_ascii_hexdigit)
}

/// Parses the expression body `t[start..end]` (between the braces).
pub(super) fn parse_expr(t: &str, start: usize, end: usize) -> Result<Part, SyntaxError> {
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
pub(super) fn parse_varspec(t: &str, start: usize, end: usize) -> Result<VarSpec, SyntaxError> {
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
