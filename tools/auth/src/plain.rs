//! SASL PLAIN (RFC 4616) as Kafka's PlainSaslServer does it, checked against the same stored
//! SCRAM credentials SCRAM uses: Krait has one user store, so a user created with
//! AlterUserScramCredentials can log in with either mechanism.

use crate::scram::{ScramCredential, ScramMechanism};

/// Longest PLAIN message accepted: RFC 4616 servers must take 255 octets per field; the
/// bound leaves room for long passwords while keeping a hostile client from sending megabytes.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// The three fields of a PLAIN message.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainMessage {
    pub authzid: String,
    pub username: String,
    pub password: Vec<u8>,
}

/// Written by hand so the password never reaches a log.
impl std::fmt::Debug for PlainMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authzid", &self.authzid)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why a PLAIN authentication failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlainError {
    #[error("malformed PLAIN message: {0}")]
    Malformed(String),
    #[error("authorization id differs from the user name")]
    AuthzidMismatch,
    /// Unknown user and wrong password alike, so a client cannot probe which users exist.
    #[error("invalid user name or password")]
    InvalidCredentials,
}

fn malformed(what: &str) -> PlainError {
    PlainError::Malformed(what.to_string())
}

/// Parses `authzid NUL authcid NUL passwd`. The authzid must be empty or the user itself.
pub fn parse(message: &[u8]) -> Result<PlainMessage, PlainError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(PlainError::Malformed(format!(
            "{} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit",
            message.len()
        )));
    }
    let fields: Vec<&[u8]> = message.split(|b| *b == 0).collect();
    let [authzid, username, password] = fields[..] else {
        return Err(malformed("expected three NUL-separated fields"));
    };
    let authzid = std::str::from_utf8(authzid).map_err(|_| malformed("authzid is not UTF-8"))?;
    let username =
        std::str::from_utf8(username).map_err(|_| malformed("user name is not UTF-8"))?;
    if username.is_empty() {
        return Err(malformed("user name not specified"));
    }
    if password.is_empty() {
        return Err(malformed("password not specified"));
    }
    if !authzid.is_empty() && authzid != username {
        return Err(PlainError::AuthzidMismatch);
    }
    Ok(PlainMessage {
        authzid: authzid.to_string(),
        username: username.to_string(),
        password: password.to_vec(),
    })
}

/// PLAIN checks the password against the user's stored SCRAM credentials (any mechanism:
/// there is one user store). Returns the user name.
pub fn authenticate(
    message: &[u8],
    credentials: impl FnOnce(&str) -> Vec<ScramCredential>,
) -> Result<String, PlainError> {
    let message = parse(message)?;
    let stored = credentials(&message.username);
    if stored.is_empty() {
        // Spend about the time a real check would, so response time does not tell a client
        // which user names exist.
        let mechanism = ScramMechanism::Sha256;
        let _ = mechanism.salted_password(&message.password, b"", mechanism.min_iterations());
        return Err(PlainError::InvalidCredentials);
    }
    if stored.iter().any(|c| c.verify_password(&message.password)) {
        Ok(message.username)
    } else {
        Err(PlainError::InvalidCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(password: &[u8]) -> Vec<ScramCredential> {
        ScramMechanism::ALL
            .into_iter()
            .map(|m| ScramCredential::generate(m, password, m.min_iterations()))
            .collect()
    }

    fn alice(user: &str) -> Vec<ScramCredential> {
        if user == "alice" {
            store(b"secret")
        } else {
            Vec::new()
        }
    }

    #[test]
    fn a_message_splits_into_authzid_user_and_password() {
        let message = parse(b"alice\0alice\0secret").unwrap();
        assert_eq!(message.authzid, "alice");
        assert_eq!(message.username, "alice");
        assert_eq!(message.password, b"secret");
        assert_eq!(parse(b"\0bob\0pw").unwrap().authzid, "");
    }

    #[test]
    fn the_right_password_authenticates_the_user() {
        assert_eq!(
            authenticate(b"\0alice\0secret", alice),
            Ok("alice".to_string())
        );
    }

    #[test]
    fn a_password_matching_any_mechanism_authenticates() {
        let only_512 = |_: &str| {
            vec![
                ScramCredential::generate(ScramMechanism::Sha256, b"old", 4096),
                ScramCredential::generate(ScramMechanism::Sha512, b"new", 4096),
            ]
        };
        assert_eq!(
            authenticate(b"\0alice\0new", only_512),
            Ok("alice".to_string())
        );
    }

    #[test]
    fn a_wrong_password_and_an_unknown_user_are_refused_alike() {
        let wrong = authenticate(b"\0alice\0guess", alice).unwrap_err();
        let unknown = authenticate(b"\0mallory\0secret", alice).unwrap_err();
        assert_eq!(wrong, PlainError::InvalidCredentials);
        assert_eq!(unknown, PlainError::InvalidCredentials);
        assert_eq!(wrong.to_string(), unknown.to_string());
    }

    #[test]
    fn an_authzid_other_than_the_user_is_refused() {
        assert_eq!(
            authenticate(b"admin\0alice\0secret", alice),
            Err(PlainError::AuthzidMismatch)
        );
    }

    #[test]
    fn messages_without_exactly_three_fields_are_refused() {
        for message in [&b""[..], b"alice", b"\0alice", b"a\0alice\0secret\0extra"] {
            assert!(matches!(parse(message), Err(PlainError::Malformed(_))));
        }
    }

    #[test]
    fn an_empty_user_or_password_is_refused() {
        assert!(matches!(
            parse(b"\0\0secret"),
            Err(PlainError::Malformed(_))
        ));
        assert!(matches!(parse(b"\0alice\0"), Err(PlainError::Malformed(_))));
    }

    #[test]
    fn names_that_are_not_utf8_are_refused() {
        assert!(matches!(
            parse(b"\0al\xffice\0pw"),
            Err(PlainError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"\xff\0alice\0pw"),
            Err(PlainError::Malformed(_))
        ));
    }

    #[test]
    fn a_message_over_the_length_bound_is_refused() {
        let long = [b"\0alice\0".as_slice(), &vec![b'x'; MAX_MESSAGE_LEN]].concat();
        assert!(matches!(parse(&long), Err(PlainError::Malformed(_))));
    }

    #[test]
    fn debug_output_leaks_no_password() {
        let message = parse(b"\0alice\0hunter2").unwrap();
        assert!(!format!("{message:?}").contains("hunter2"));
    }
}
