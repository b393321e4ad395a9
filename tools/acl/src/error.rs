//! The one error type of the crate: why a binding or a filter is refused.

/// Why an ACL binding or filter is refused.
///
/// The message is the text Kafka puts in the response's `error_message` (the error code is
/// `INVALID_REQUEST`), so a client sees the same words from Krait as from a JVM broker.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AclError {
    /// The request names something Kafka would not store or cannot match with.
    #[error("{0}")]
    Invalid(String),
}

impl AclError {
    /// The message suitable for a Kafka response's `error_message`.
    pub fn message(&self) -> &str {
        match self {
            AclError::Invalid(message) => message,
        }
    }
}
