//! Kafka's `sasl.jaas.config` value, the one JAAS login-module entry a Java client carries:
//! `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice"
//! password="secret";`. Read as Java's `JaasConfig` reads it (quoted values with backslash
//! escapes, unquoted words, a closing `;`); only the SCRAM and PLAIN modules, whose options
//! are a user name and a password, are accepted.

use std::collections::BTreeMap;

/// Why a `sasl.jaas.config` value cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JaasError {
    #[error("malformed JAAS entry: {0}")]
    Malformed(String),
    #[error(
        "login module {0} is not supported: use org.apache.kafka.common.security.scram.ScramLoginModule \
         or org.apache.kafka.common.security.plain.PlainLoginModule"
    )]
    UnsupportedModule(String),
    #[error("the JAAS entry has no {0} option")]
    Missing(&'static str),
}

/// The user name and password of a SCRAM or PLAIN login module entry.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasLogin {
    pub username: String,
    pub password: String,
}

/// Written by hand so the password never reaches a log.
impl std::fmt::Debug for JaasLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JaasLogin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

/// Splits the entry into words, quoted strings (escapes decoded), `=` and `;`.
fn tokens(text: &str) -> Result<Vec<Token>, JaasError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Equals);
            }
            ';' => {
                chars.next();
                out.push(Token::Semicolon);
            }
            '"' | '\'' => {
                chars.next();
                out.push(Token::Quoted(quoted(&mut chars, c)?));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '=' | ';' | '"' | '\'') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

/// The rest of a string quoted with `quote`, as Java's `StreamTokenizer` decodes it.
fn quoted(chars: &mut impl Iterator<Item = char>, quote: char) -> Result<String, JaasError> {
    let mut value = String::new();
    loop {
        match chars.next() {
            None => return Err(JaasError::Malformed("unterminated quoted value".into())),
            Some(c) if c == quote => return Ok(value),
            Some('\\') => match chars.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('r') => value.push('\r'),
                Some(other) => value.push(other),
                None => return Err(JaasError::Malformed("unterminated quoted value".into())),
            },
            Some(c) => value.push(c),
        }
    }
}

/// `module flag (key=value)* ;` into the module name and its options.
fn entry(text: &str) -> Result<(String, BTreeMap<String, String>), JaasError> {
    let mut tokens = tokens(text)?.into_iter();
    let Some(Token::Word(module)) = tokens.next() else {
        return Err(JaasError::Malformed(
            "expected a login module class name".into(),
        ));
    };
    match tokens.next() {
        Some(Token::Word(flag))
            if ["required", "requisite", "sufficient", "optional"]
                .contains(&flag.to_ascii_lowercase().as_str()) => {}
        _ => {
            return Err(JaasError::Malformed(format!(
                "expected required, requisite, sufficient or optional after {module}"
            )));
        }
    }
    let mut options = BTreeMap::new();
    loop {
        match tokens.next() {
            Some(Token::Semicolon) => break,
            Some(Token::Word(key)) => {
                if tokens.next() != Some(Token::Equals) {
                    return Err(JaasError::Malformed(format!("expected = after {key}")));
                }
                let value = match tokens.next() {
                    Some(Token::Word(v) | Token::Quoted(v)) => v,
                    _ => return Err(JaasError::Malformed(format!("expected a value for {key}"))),
                };
                options.insert(key, value);
            }
            _ => {
                return Err(JaasError::Malformed(
                    "expected key=value or the closing ;".into(),
                ));
            }
        }
    }
    if tokens.next().is_some() {
        return Err(JaasError::Malformed(
            "only one login module entry is allowed".into(),
        ));
    }
    Ok((module, options))
}

/// The user name and password of a ScramLoginModule or PlainLoginModule entry.
pub fn parse_login(text: &str) -> Result<JaasLogin, JaasError> {
    let (module, mut options) = entry(text)?;
    let simple = module.rsplit('.').next().unwrap_or_default();
    if simple != "ScramLoginModule" && simple != "PlainLoginModule" {
        return Err(JaasError::UnsupportedModule(module));
    }
    Ok(JaasLogin {
        username: options
            .remove("username")
            .ok_or(JaasError::Missing("username"))?,
        password: options
            .remove("password")
            .ok_or(JaasError::Missing("password"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(text: &str) -> (String, String) {
        let l = parse_login(text).unwrap();
        (l.username, l.password)
    }

    #[test]
    fn the_scram_and_plain_modules_give_their_user_name_and_password() {
        assert_eq!(
            login(
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="secret";"#
            ),
            ("alice".into(), "secret".into())
        );
        assert_eq!(
            login(
                "org.apache.kafka.common.security.plain.PlainLoginModule required\n  password=pw\n  username=bob ;"
            ),
            ("bob".into(), "pw".into())
        );
    }

    #[test]
    fn quoted_values_keep_spaces_separators_and_escaped_quotes() {
        assert_eq!(
            login(
                r#"x.ScramLoginModule required username="a b" password="p\"w;=\\d\n" extra='ignored';"#
            ),
            ("a b".into(), "p\"w;=\\d\n".into())
        );
    }

    #[test]
    fn other_modules_and_malformed_entries_are_refused_with_the_reason() {
        let krb =
            parse_login("com.sun.security.auth.module.Krb5LoginModule required;").unwrap_err();
        assert!(matches!(krb, JaasError::UnsupportedModule(m) if m.ends_with("Krb5LoginModule")));
        assert_eq!(
            parse_login("x.PlainLoginModule required username=\"a\";").unwrap_err(),
            JaasError::Missing("password")
        );
        for bad in [
            "x.PlainLoginModule username=\"a\" password=\"b\";",
            "x.PlainLoginModule required username=\"a\" password=\"b\"",
            "x.PlainLoginModule required username=\"a password=b;",
            "x.PlainLoginModule required username \"a\";",
            "x.PlainLoginModule required username=a password=b; y.PlainLoginModule required;",
        ] {
            assert!(
                matches!(parse_login(bad), Err(JaasError::Malformed(_))),
                "{bad} should be malformed"
            );
        }
    }

    #[test]
    fn a_login_never_prints_its_password() {
        let l = parse_login("x.PlainLoginModule required username=u password=hunter2;").unwrap();
        assert!(!format!("{l:?}").contains("hunter2"));
    }
}
