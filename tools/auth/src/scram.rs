//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka speaks them: the salted
//! credential a user is stored as, the server side of one exchange (`ScramServer`), and a
//! client side (`ScramClient`) for tests and the CLI.
//!
//! Choices that follow Kafka's `ScramSaslServer`:
//! - channel binding is not offered: a gs2 header of `n` or `y` is accepted, `p=` is refused;
//! - an authorization id, when present, must equal the authenticated user;
//! - extensions in client-first-message are ignored, except `tokenauth=true` (delegation-token
//!   authentication), which is refused because Krait has no delegation tokens: accepting it as
//!   a plain login would let a token-shaped request authenticate against a password;
//! - a stored credential with fewer iterations than the mechanism's minimum is refused;
//! - any failure ends the exchange: SASL exchanges are not retried mid-way.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Kafka's maximum iteration count for a SCRAM credential (AlterUserScramCredentials).
pub const MAX_ITERATIONS: u32 = 16384;

/// Longest SCRAM message accepted. Real messages are a few hundred bytes; the bound keeps a
/// hostile client from making the server parse or hash megabytes.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Length of the salt `ScramCredential::generate` draws. Any length works for verification;
/// 32 random bytes is at least as strong as the 130-bit base-36 text Kafka's tools use.
pub const GENERATED_SALT_LEN: usize = 32;

/// Length of a random nonce (alphanumeric characters, about 190 bits).
const NONCE_LEN: usize = 32;

/// A SCRAM hash mechanism, with Kafka's names and ids.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name clients ask for.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's `ScramMechanism` id as the admin APIs carry it.
    pub fn kafka_type(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_kafka_type(t: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.kafka_type() == t)
    }

    /// Kafka's minimum iteration count (the same for both hashes).
    pub fn min_iterations(self) -> u32 {
        4096
    }

    /// Output length of the hash, which is also the length of every key and proof.
    pub fn hash_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        match self {
            ScramMechanism::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// RFC 5802's `ClientProof`: `ClientKey XOR HMAC(H(ClientKey), AuthMessage)`.
    fn client_proof(self, client_key: &[u8], auth_message: &str) -> Vec<u8> {
        let signature = self.hmac(&self.hash(client_key), auth_message.as_bytes());
        xor(client_key, &signature)
    }

    /// RFC 5802's `Hi(password, salt, i)`: PBKDF2 with HMAC-H and one hash-length block.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        // PBKDF2 is undefined for zero rounds; one round is the closest meaningful value.
        let rounds = iterations.max(1);
        let mut out = vec![0u8; self.hash_len()];
        match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out)
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out)
            }
        }
        out
    }
}

/// What a server stores for one user and mechanism: never the password.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

/// Written by hand so logs never carry the keys: the server key alone lets anyone impersonate
/// the broker to this user.
impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .field("salt_len", &self.salt.len())
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// From a password (PBKDF2 with HMAC-SHA-x).
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let salted = mechanism.salted_password(password, salt, iterations);
        Self::from_salted_password(mechanism, &salted, salt, iterations)
    }

    /// With a fresh random salt of `GENERATED_SALT_LEN` bytes: used by the CLI and tests.
    pub fn generate(mechanism: ScramMechanism, password: &[u8], iterations: u32) -> Self {
        let mut salt = vec![0u8; GENERATED_SALT_LEN];
        rand::rng().fill(&mut salt[..]);
        Self::from_password(mechanism, password, &salt, iterations)
    }

    /// From the salted password AlterUserScramCredentials carries (the client already ran
    /// PBKDF2, so the broker never sees the password).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        let server_key = mechanism.hmac(salted_password, b"Server Key");
        ScramCredential {
            mechanism,
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key,
            iterations,
        }
    }

    /// Whether `password` derives this credential (constant-time compare of stored keys).
    /// PLAIN uses it.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let derived = Self::from_password(self.mechanism, password, &self.salt, self.iterations);
        bool::from(derived.stored_key.ct_eq(&self.stored_key))
    }
}

/// Why a SCRAM exchange failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(String),
    #[error("unknown SCRAM user {0:?}")]
    UnknownUser(String),
    #[error("invalid client proof")]
    InvalidProof,
    #[error("nonce does not match the exchange's nonce")]
    NonceMismatch,
    #[error("SCRAM message out of order")]
    OutOfOrder,
    #[error("SCRAM message of {0} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit")]
    TooLong(usize),
    #[error("channel binding is not supported")]
    ChannelBindingUnsupported,
    #[error("channel binding does not match the gs2 header")]
    ChannelBindingMismatch,
    #[error("authorization id {authzid:?} differs from user {user:?}")]
    AuthzidMismatch { authzid: String, user: String },
    #[error("unsupported SCRAM extension {0:?}")]
    UnsupportedExtension(String),
    #[error("credential has {got} iterations; the mechanism needs {min} to {max}")]
    InvalidIterations { got: u32, min: u32, max: u32 },
    #[error("credential is for {credential:?}, the exchange is {exchange:?}")]
    MechanismMismatch {
        credential: ScramMechanism,
        exchange: ScramMechanism,
    },
    #[error("invalid server signature")]
    InvalidServerSignature,
    #[error("server reported error {0:?}")]
    ServerError(String),
}

impl ScramError {
    /// What to tell the client. An unknown user, a wrong password and an unusable stored
    /// credential read alike (Kafka's words), so replies do not reveal which users exist; the
    /// `Display` form, with the detail, is for the broker's log.
    pub fn client_message(&self) -> String {
        match self {
            ScramError::UnknownUser(_)
            | ScramError::InvalidProof
            | ScramError::MechanismMismatch { .. }
            | ScramError::InvalidIterations { .. } => {
                "Authentication failed: Invalid user credentials".to_string()
            }
            other => format!("Authentication failed: {other}"),
        }
    }
}

/// Byte-wise XOR of two equally long values (a proof and a signature give back the key).
fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

fn malformed(what: &str) -> ScramError {
    ScramError::Malformed(what.to_string())
}

/// Checks the length bound and UTF-8 of an incoming message.
fn decode_message(message: &[u8]) -> Result<&str, ScramError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(ScramError::TooLong(message.len()));
    }
    std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))
}

/// RFC 5802 `saslname` decoding: `=2C` is `,` and `=3D` is `=`; any other `=` is an error.
pub fn decode_saslname(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(malformed("bad '=' escape in user name")),
        }
        rest = &rest[at + 3..];
    }
    if rest.contains(',') {
        return Err(malformed("unescaped ',' in user name"));
    }
    out.push_str(rest);
    Ok(out)
}

/// RFC 5802 `saslname` encoding, the inverse of `decode_saslname`.
pub fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// A nonce is printable ASCII without `,` (RFC 5802 `printable`).
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

fn random_nonce() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(NONCE_LEN)
        .map(char::from)
        .collect()
}

/// Splits `k=value` and checks the key.
fn attribute(part: Option<&str>, key: char) -> Result<&str, ScramError> {
    let part = part.ok_or_else(|| ScramError::Malformed(format!("missing '{key}=' attribute")))?;
    let mut chars = part.chars();
    if chars.next() != Some(key) || chars.next() != Some('=') {
        return Err(ScramError::Malformed(format!(
            "expected '{key}=' attribute"
        )));
    }
    Ok(&part[2..])
}

/// A parsed client-first-message.
struct ClientFirst<'a> {
    gs2_header: &'a str,
    authzid: Option<String>,
    user: String,
    nonce: &'a str,
    bare: &'a str,
}

fn parse_client_first(message: &str) -> Result<ClientFirst<'_>, ScramError> {
    let mut parts = message.splitn(3, ',');
    match parts.next() {
        Some("n") | Some("y") => {}
        Some(flag) if flag.starts_with("p=") => return Err(ScramError::ChannelBindingUnsupported),
        _ => return Err(malformed("bad gs2 channel binding flag")),
    }
    let authzid = match parts.next() {
        Some("") => None,
        Some(a) if a.starts_with("a=") => Some(decode_saslname(&a[2..])?),
        _ => return Err(malformed("bad gs2 authzid")),
    };
    let bare = parts
        .next()
        .ok_or_else(|| malformed("missing client-first-message-bare"))?;
    let gs2_header = &message[..message.len() - bare.len()];
    let mut attrs = bare.split(',');
    // A leading `m=` is a mandatory extension the server does not understand (RFC 5802 §5.1).
    let user = decode_saslname(attribute(attrs.next(), 'n')?)?;
    if user.is_empty() {
        return Err(malformed("empty user name"));
    }
    let nonce = attribute(attrs.next(), 'r')?;
    if !valid_nonce(nonce) {
        return Err(malformed("bad client nonce"));
    }
    for extension in attrs {
        check_extension(extension)?;
    }
    Ok(ClientFirst {
        gs2_header,
        authzid,
        user,
        nonce,
        bare,
    })
}

/// Extensions are `key=value`; only `tokenauth=true` changes anything, and it is refused.
fn check_extension(extension: &str) -> Result<(), ScramError> {
    let (key, value) = extension
        .split_once('=')
        .ok_or_else(|| malformed("extension without '='"))?;
    if key.is_empty() {
        return Err(malformed("extension without a name"));
    }
    if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
        return Err(ScramError::UnsupportedExtension(key.to_string()));
    }
    Ok(())
}

/// Where one server-side exchange stands.
enum ServerState {
    AwaitingClientFirst,
    AwaitingClientFinal(Box<Pending>),
    Authenticated(String),
    Failed,
}

/// What the server remembers between its first and final message.
struct Pending {
    user: String,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    /// The client's nonce followed by the server's, as sent in server-first.
    nonce: String,
    /// The client's part alone.
    client_nonce: String,
}

/// One server-side SCRAM exchange: client-first -> server-first -> client-final -> server-final.
pub struct ScramServer {
    mechanism: ScramMechanism,
    server_nonce: Option<String>,
    state: ServerState,
}

/// Written by hand so the credential's keys never reach a log.
impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (state, user) = match &self.state {
            ServerState::AwaitingClientFirst => ("awaiting client-first", None),
            ServerState::AwaitingClientFinal(p) => ("awaiting client-final", Some(&p.user)),
            ServerState::Authenticated(user) => ("authenticated", Some(user)),
            ServerState::Failed => ("failed", None),
        };
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("state", &state)
            .field("user", &user)
            .finish()
    }
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> Self {
        ScramServer {
            mechanism,
            server_nonce: None,
            state: ServerState::AwaitingClientFirst,
        }
    }

    /// With a fixed server nonce, so tests reproduce published vectors.
    #[cfg(test)]
    pub(crate) fn with_nonce(mechanism: ScramMechanism, server_nonce: &str) -> Self {
        ScramServer {
            server_nonce: Some(server_nonce.to_string()),
            ..Self::new(mechanism)
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Parses client-first-message, looks the user up with `lookup` (the credential for this
    /// exchange's mechanism), and returns server-first-message.
    pub fn client_first(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, ServerState::AwaitingClientFirst) {
            self.state = ServerState::Failed;
            return Err(ScramError::OutOfOrder);
        }
        // Every failure is final; only success moves the state on.
        self.state = ServerState::Failed;
        let pending = self.start(message, lookup)?;
        let reply = pending.server_first.clone().into_bytes();
        self.state = ServerState::AwaitingClientFinal(Box::new(pending));
        Ok(reply)
    }

    fn start(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Pending, ScramError> {
        let first = parse_client_first(decode_message(message)?)?;
        if let Some(authzid) = &first.authzid
            && !authzid.is_empty()
            && *authzid != first.user
        {
            return Err(ScramError::AuthzidMismatch {
                authzid: authzid.clone(),
                user: first.user,
            });
        }
        let credential =
            lookup(&first.user).ok_or_else(|| ScramError::UnknownUser(first.user.clone()))?;
        if credential.mechanism != self.mechanism {
            return Err(ScramError::MechanismMismatch {
                credential: credential.mechanism,
                exchange: self.mechanism,
            });
        }
        let min = self.mechanism.min_iterations();
        if credential.iterations < min {
            return Err(ScramError::InvalidIterations {
                got: credential.iterations,
                min,
                max: MAX_ITERATIONS,
            });
        }
        let server_nonce = self.server_nonce.take().unwrap_or_else(random_nonce);
        let nonce = format!("{}{}", first.nonce, server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        Ok(Pending {
            user: first.user,
            credential,
            gs2_header: first.gs2_header.to_string(),
            client_first_bare: first.bare.to_string(),
            server_first,
            nonce,
            client_nonce: first.nonce.to_string(),
        })
    }

    /// Verifies client-final-message (channel binding, nonce, proof in constant time) and
    /// returns server-final-message `v=...`.
    pub fn client_final(&mut self, message: &[u8]) -> Result<Vec<u8>, ScramError> {
        let state = std::mem::replace(&mut self.state, ServerState::Failed);
        let ServerState::AwaitingClientFinal(pending) = state else {
            return Err(ScramError::OutOfOrder);
        };
        let reply = finish(&pending, message)?;
        self.state = ServerState::Authenticated(pending.user);
        Ok(reply)
    }

    /// The authenticated user name, once `client_final` succeeded.
    pub fn authenticated_user(&self) -> Option<&str> {
        match &self.state {
            ServerState::Authenticated(user) => Some(user),
            _ => None,
        }
    }
}

/// RFC 5802: the client echoes the nonce of server-first. librdkafka before 2.6.1 (Debian's
/// kcat among its users) prefixes its own nonce once more; like Kafka 3.8.1 onwards, that form
/// is accepted too. Either way the echo holds this exchange's fresh server nonce, which is
/// what defeats a replay (CVE-2024-56128 was a server that checked no nonce at all).
fn nonce_matches(echoed: &str, pending: &Pending) -> bool {
    echoed == pending.nonce
        || echoed
            .strip_prefix(pending.client_nonce.as_str())
            .is_some_and(|rest| rest == pending.nonce)
}

/// Checks client-final-message against the pending exchange and signs the transcript.
fn finish(pending: &Pending, message: &[u8]) -> Result<Vec<u8>, ScramError> {
    let message = decode_message(message)?;
    let (without_proof, proof) = message
        .rsplit_once(",p=")
        .ok_or_else(|| malformed("missing proof"))?;
    let mut attrs = without_proof.split(',');
    let binding = BASE64
        .decode(attribute(attrs.next(), 'c')?)
        .map_err(|_| malformed("channel binding is not base64"))?;
    if binding != pending.gs2_header.as_bytes() {
        return Err(ScramError::ChannelBindingMismatch);
    }
    if !nonce_matches(attribute(attrs.next(), 'r')?, pending) {
        return Err(ScramError::NonceMismatch);
    }
    let proof = BASE64
        .decode(proof)
        .map_err(|_| malformed("proof is not base64"))?;
    let credential = &pending.credential;
    let mechanism = credential.mechanism;
    if proof.len() != mechanism.hash_len() {
        return Err(ScramError::InvalidProof);
    }
    let auth_message = format!(
        "{},{},{}",
        pending.client_first_bare, pending.server_first, without_proof
    );
    let client_signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
    let client_key = xor(&proof, &client_signature);
    let stored_key = mechanism.hash(&client_key);
    if !bool::from(stored_key.ct_eq(&credential.stored_key)) {
        return Err(ScramError::InvalidProof);
    }
    let server_signature = mechanism.hmac(&credential.server_key, auth_message.as_bytes());
    Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
}

/// The client side of one exchange, for tests and the CLI.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    expected_server_signature: Option<Vec<u8>>,
}

/// Written by hand so the password never reaches a log.
impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    pub fn new(mechanism: ScramMechanism, user: &str, password: &[u8]) -> Self {
        Self::with_nonce(mechanism, user, password, &random_nonce())
    }

    /// With a fixed client nonce, so tests reproduce published vectors.
    pub(crate) fn with_nonce(
        mechanism: ScramMechanism,
        user: &str,
        password: &[u8],
        nonce: &str,
    ) -> Self {
        ScramClient {
            mechanism,
            password: password.to_vec(),
            nonce: nonce.to_string(),
            client_first_bare: format!("n={},r={nonce}", encode_saslname(user)),
            expected_server_signature: None,
        }
    }

    /// client-first-message: no channel binding, no authorization id.
    pub fn first_message(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Answers server-first-message with client-final-message (the proof of the password).
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let server_first = decode_message(server_first)?;
        let mut attrs = server_first.split(',');
        let nonce = attribute(attrs.next(), 'r')?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() || !valid_nonce(nonce)
        {
            return Err(ScramError::NonceMismatch);
        }
        let salt = BASE64
            .decode(attribute(attrs.next(), 's')?)
            .map_err(|_| malformed("salt is not base64"))?;
        let iterations: u32 = attribute(attrs.next(), 'i')?
            .parse()
            .map_err(|_| malformed("iterations is not a number"))?;
        let min = self.mechanism.min_iterations();
        // The upper bound keeps a hostile server from making the client hash for hours.
        if !(min..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::InvalidIterations {
                got: iterations,
                min,
                max: MAX_ITERATIONS,
            });
        }
        let mechanism = self.mechanism;
        let salted = mechanism.salted_password(&self.password, &salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        let server_key = mechanism.hmac(&salted, b"Server Key");
        // "biws" is base64 of the gs2 header "n,," that first_message sends.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let proof = mechanism.client_proof(&client_key, &auth_message);
        self.expected_server_signature = Some(mechanism.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks server-final-message: the server proves it knows the server key too.
    pub fn verify_server_final(&self, message: &[u8]) -> Result<(), ScramError> {
        let expected = self
            .expected_server_signature
            .as_ref()
            .ok_or(ScramError::OutOfOrder)?;
        let message = decode_message(message)?;
        if let Some(error) = message.strip_prefix("e=") {
            return Err(ScramError::ServerError(error.to_string()));
        }
        let signature = attribute(message.split(',').next(), 'v')?;
        let signature = BASE64
            .decode(signature)
            .map_err(|_| malformed("server signature is not base64"))?;
        if bool::from(signature.ct_eq(expected)) {
            Ok(())
        } else {
            Err(ScramError::InvalidServerSignature)
        }
    }
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
