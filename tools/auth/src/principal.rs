//! The principal a TLS client certificate names, as Kafka builds it: the subject DN written the
//! way Java's `X500Principal.getName()` (RFC 2253) writes it, then rewritten by
//! `ssl.principal.mapping.rules` (Kafka's `SslPrincipalMapper`).

use std::sync::LazyLock;

use regex::Regex;
use x509_parser::der_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a principal could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrincipalError {
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    #[error("bad principal mapping rule: {0}")]
    BadRule(String),
    #[error("no principal mapping rule matched {0:?}")]
    NoRuleMatched(String),
}

/// Attribute types Java writes by keyword in RFC 2253 form; all others are written as dotted
/// OIDs with a hex value.
const KEYWORDS: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Characters Java's RFC 2253 writer escapes anywhere in a value (a superset of RFC 2253's
/// list: Java also escapes `=` and `#`).
const SPECIAL: &str = ",=+<>#;\\\"";

/// The subject DN of a DER certificate in RFC 2253 form as Java's `X500Principal.getName()`
/// writes it (what Kafka uses): RDNs in reverse certificate order, `,` between RDNs and `+`
/// inside a multi-valued one, no spaces.
pub fn subject_dn(certificate_der: &[u8]) -> Result<String, PrincipalError> {
    let (_, certificate) = X509Certificate::from_der(certificate_der)
        .map_err(|e| PrincipalError::BadCertificate(e.to_string()))?;
    let rdns: Vec<String> = certificate
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type().to_id_string();
                    write_attribute(&oid, attribute.attr_value())
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// One `type=value`, as Java's `AVA.toRFC2253String` writes it.
fn write_attribute(oid: &str, value: &Any<'_>) -> String {
    let keyword = KEYWORDS.iter().find(|(o, _)| *o == oid).map(|(_, k)| *k);
    match (keyword, decode_string(value)) {
        (Some(keyword), Some(text)) => format!("{keyword}={}", escape_value(&text)),
        // Unknown types, and known types whose value is not a string, are written as the hex of
        // the value's DER encoding (RFC 2253 §2.4).
        (keyword, _) => format!("{}=#{}", keyword.unwrap_or(oid), hex(&der_encoding(value))),
    }
}

/// The text of a directory string, decoded as Java does per string type.
fn decode_string(value: &Any<'_>) -> Option<String> {
    if value.class() != Class::Universal {
        return None;
    }
    let data = value.data;
    match value.tag() {
        Tag::Utf8String => std::str::from_utf8(data).ok().map(str::to_string),
        // Java reads these one byte per character (ISO-8859-1).
        Tag::PrintableString | Tag::T61String | Tag::Ia5String | Tag::GeneralString => {
            Some(data.iter().map(|&b| char::from(b)).collect())
        }
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping as Java writes it: specials get a backslash, NUL is `\00`, and leading
/// and trailing spaces (and carriage returns) get a backslash each.
fn escape_value(text: &str) -> String {
    let mut escaped: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        if SPECIAL.contains(c) {
            escaped.push('\\');
            escaped.push(c);
        } else if c == '\0' {
            escaped.extend(['\\', '0', '0']);
        } else {
            escaped.push(c);
        }
    }
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = escaped.iter().take_while(|c| blank(c)).count();
    let trail = escaped.iter().rev().take_while(|c| blank(c)).count();
    let mut out = String::with_capacity(escaped.len() + lead + trail);
    for (i, c) in escaped.iter().enumerate() {
        if i < lead || i >= escaped.len().saturating_sub(trail) {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

/// The DER encoding (identifier, length, contents) of an attribute value.
fn der_encoding(value: &Any<'_>) -> Vec<u8> {
    let mut out = match value.header.raw_tag() {
        Some(raw) => raw.to_vec(),
        None => {
            // The parser records the raw tag; rebuilding it covers low tag numbers otherwise.
            let class = (value.class() as u8) << 6;
            let constructed = if value.header.is_constructed() {
                0x20
            } else {
                0
            };
            vec![class | constructed | (value.tag().0 as u8 & 0x1f)]
        }
    };
    let len = value.data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value.data);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Kafka's rule grammar, kept as Kafka writes it so the same leftmost-first matching splits
/// and parses the same strings (a rule's regex may contain commas and escaped slashes).
const RULE_PATTERN: &str = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)";

static RULE_SPLITTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"\s*({RULE_PATTERN})\s*(,\s*|$)")).expect("valid splitter regex")
});

static RULE_PARSER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"\A(?:{RULE_PATTERN})")).expect("valid parser regex"));

/// How a rule changes the case of its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Rewrite {
        /// The rule's pattern anchored to the whole DN (Java's `Matcher.matches`).
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

/// Kafka's `ssl.principal.mapping.rules`: the first rule matching the whole DN names the
/// principal.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl PrincipalMapper {
    /// Parses a comma-separated rule list. `""` means DEFAULT only (Kafka's default setting).
    pub fn parse(rules: &str) -> Result<Self, PrincipalError> {
        let rules = rules.trim();
        if rules.is_empty() {
            return Ok(Self::default_rules());
        }
        let mut parsed = Vec::new();
        for found in RULE_SPLITTER.captures_iter(rules) {
            let text = found.get(1).map_or("", |m| m.as_str());
            if let Some(rule) = parse_rule(text)? {
                parsed.push(rule);
            }
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    pub fn default_rules() -> Self {
        PrincipalMapper {
            rules: vec![Rule::Default],
        }
    }

    /// The principal name for a DN, or an error when no rule matches (Kafka refuses the client).
    pub fn map(&self, dn: &str) -> Result<String, PrincipalError> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Rewrite {
                    pattern,
                    replacement,
                    case,
                } => {
                    if let Some(captures) = pattern.captures(dn) {
                        let name = expand(replacement, &captures, pattern)?;
                        return Ok(match case {
                            Case::Keep => name,
                            Case::Lower => name.to_lowercase(),
                            Case::Upper => name.to_uppercase(),
                        });
                    }
                }
            }
        }
        Err(PrincipalError::NoRuleMatched(dn.to_string()))
    }
}

/// One rule's text; `None` for the empty rules a stray comma leaves (Kafka ignores them).
fn parse_rule(text: &str) -> Result<Option<Rule>, PrincipalError> {
    let bad = || PrincipalError::BadRule(text.to_string());
    let captures = RULE_PARSER.captures(text).ok_or_else(bad)?;
    if captures.get(0).map_or(0, |m| m.end()) != text.len() {
        return Err(bad());
    }
    if captures.get(1).is_some() {
        return Ok(Some(Rule::Default));
    }
    let (Some(pattern), Some(replacement)) = (captures.get(2), captures.get(4)) else {
        return Ok(None);
    };
    let case = match captures.get(6).map(|m| m.as_str()) {
        Some("L") => Case::Lower,
        Some("U") => Case::Upper,
        _ => Case::Keep,
    };
    let anchored = format!(r"\A(?:{})\z", pattern.as_str());
    let pattern =
        Regex::new(&anchored).map_err(|e| PrincipalError::BadRule(format!("{text}: {e}")))?;
    check_replacement(replacement.as_str())
        .map_err(|why| PrincipalError::BadRule(format!("{text}: {why}")))?;
    Ok(Some(Rule::Rewrite {
        pattern,
        replacement: replacement.as_str().to_string(),
        case,
    }))
}

/// Refuses replacements Java's `Matcher.appendReplacement` would throw on at match time.
fn check_replacement(replacement: &str) -> Result<(), &'static str> {
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return Err("trailing '\\' in replacement"),
            '$' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {}
                Some('{') => {}
                _ => return Err("'$' not followed by a group reference"),
            },
            _ => {}
        }
    }
    Ok(())
}

/// Java replacement syntax over one match: `\x` is a literal `x`, `$n` a numbered group (as
/// many digits as still name a group), `${name}` a named group. As Kafka does (after Apache
/// NiFi), a `$n` naming no group at all is kept as literal text.
fn expand(
    replacement: &str,
    captures: &regex::Captures<'_>,
    pattern: &Regex,
) -> Result<String, PrincipalError> {
    let groups = captures.len() - 1;
    let group = |i: usize| captures.get(i).map_or("", |m| m.as_str());
    let chars: Vec<char> = replacement.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' if i < chars.len() => {
                out.push(chars[i]);
                i += 1;
            }
            '$' if chars.get(i) == Some(&'{') => {
                let close = chars[i..].iter().position(|c| *c == '}');
                let name: String = match close {
                    Some(close) => chars[i + 1..i + close].iter().collect(),
                    None => return Err(PrincipalError::BadRule(replacement.to_string())),
                };
                if !pattern.capture_names().any(|n| n == Some(name.as_str())) {
                    return Err(PrincipalError::BadRule(format!("no group {name:?}")));
                }
                out.push_str(captures.name(&name).map_or("", |m| m.as_str()));
                i += close.unwrap_or(0) + 1;
            }
            '$' if chars.get(i).is_some_and(char::is_ascii_digit) => {
                let first = chars[i].to_digit(10).unwrap_or(0) as usize;
                if first > groups {
                    out.push('$');
                    continue;
                }
                let mut number = first;
                i += 1;
                while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                    let longer = number * 10 + d as usize;
                    if longer > groups {
                        break;
                    }
                    number = longer;
                    i += 1;
                }
                out.push_str(group(number));
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "principal_tests.rs"]
mod tests;
