//! krait-properties: java.util.Properties' line format, as Kafka's `server.properties` (the
//! broker's `--config`) and client `.properties` files (the CLI's `--command-config`) use it:
//! `key=value`, `key: value` or `key value`, `#` and `!` comments, `\` line continuations and
//! the `\t \n \r \f \\ \uXXXX` escapes. Pure text in, a map out; what the keys mean is the
//! caller's business.

use std::collections::BTreeMap;

/// A properties file that cannot be read, with the line at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct PropertiesError {
    pub line: usize,
    pub reason: String,
}

/// Parses a whole file. A key given twice keeps its last value, as Java's `Properties` does.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, PropertiesError> {
    let mut map = BTreeMap::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, first)) = lines.next() {
        let mut logical = first.trim_start().to_string();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        let key = unescape(key).map_err(|reason| PropertiesError {
            line: index + 1,
            reason,
        })?;
        let value = unescape(value).map_err(|reason| PropertiesError {
            line: index + 1,
            reason,
        })?;
        map.insert(key, value);
    }
    Ok(map)
}

/// An odd number of trailing backslashes continues the line.
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// The key ends at the first unescaped `=`, `:` or whitespace; the separator and the
/// whitespace around it are not part of the value.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => i += 1,
        }
    }
    let i = i.min(bytes.len());
    let key = &line[..i];
    let mut rest = line[i..].trim_start_matches([' ', '\t', '\x0c']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t', '\x0c']);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("bad unicode escape \\u{hex}"))?;
                out.push(code);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_separators_comments_and_blank_lines_are_read_as_java_reads_them() {
        let map = parse(
            "# a comment\n! another\n\nlisteners=PLAINTEXT://:9092\nlog.dirs : /var/lib/krait\nnode.id 3\n  indented = yes  \nempty=\n",
        )
        .unwrap();
        assert_eq!(map["listeners"], "PLAINTEXT://:9092");
        assert_eq!(map["log.dirs"], "/var/lib/krait");
        assert_eq!(map["node.id"], "3");
        assert_eq!(map["indented"], "yes  ");
        assert_eq!(map["empty"], "");
        assert_eq!(map.len(), 5);
    }

    #[test]
    fn continuations_join_lines_and_escapes_are_decoded() {
        let map = parse(
            "super.users=User:admin;\\\n    User:operator\npath=C\\:\\\\data\nkey\\=with\\ sep=v\nsnow=\\u2603\n",
        )
        .unwrap();
        assert_eq!(map["super.users"], "User:admin;User:operator");
        assert_eq!(map["path"], "C:\\data");
        assert_eq!(map["key=with sep"], "v");
        assert_eq!(map["snow"], "\u{2603}");
    }

    #[test]
    fn a_later_value_wins_and_a_bad_escape_names_its_line() {
        let map = parse("a=1\na=2\n").unwrap();
        assert_eq!(map["a"], "2");
        let err = parse("ok=1\nbad=\\uZZ\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn an_escaped_backslash_at_the_end_is_not_a_continuation() {
        let map = parse("a=x\\\\\nb=y\n").unwrap();
        assert_eq!(map["a"], "x\\");
        assert_eq!(map["b"], "y");
    }
}
