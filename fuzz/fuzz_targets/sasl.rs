//! SASL as a SaslAuthenticate handler drives it: a SCRAM exchange (client-first, then
//! client-final) against a user who exists, and a PLAIN token, through krait-auth.
//!
//! Input: a mechanism byte, then client-first, a 0xff byte, client-final (0xff never occurs in
//! UTF-8, so it cannot be part of a valid message). The exchange's server nonce is random, so
//! `%n` in client-final is replaced with the nonce server-first sent, as a real client would
//! echo it; that lets mutations reach the proof check.
#![no_main]

use std::sync::LazyLock;

use krait_auth::plain;
use krait_auth::scram::{ScramCredential, ScramMechanism, ScramServer, decode_saslname};
use libfuzzer_sys::fuzz_target;

/// One credential per mechanism for every user name, derived once (PBKDF2 is slow by design).
static CREDENTIALS: LazyLock<[ScramCredential; 2]> = LazyLock::new(|| {
    [ScramMechanism::Sha256, ScramMechanism::Sha512]
        .map(|m| ScramCredential::from_password(m, b"secret", b"fuzz-salt", m.min_iterations()))
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (first, last) = krait_fuzz::split_once(rest, b"\xff");
    if mode & 0x80 != 0 {
        // PLAIN, without a stored credential: the parse and the lookup, not PBKDF2.
        let _ = plain::parse(first);
        let _ = plain::authenticate(first, |_| Vec::new());
        return;
    }
    if let Ok(name) = std::str::from_utf8(first) {
        let _ = decode_saslname(name);
    }
    let credential = &CREDENTIALS[usize::from(mode & 1)];
    let mut server = ScramServer::new(credential.mechanism);
    let Ok(server_first) = server.client_first(first, |_| Some(credential.clone())) else {
        return;
    };
    let Some(last) = last else {
        return;
    };
    let nonce = std::str::from_utf8(&server_first)
        .ok()
        .and_then(|m| m.strip_prefix("r="))
        .and_then(|m| m.split(',').next())
        .expect("server-first starts with the nonce");
    let last = replace(last, b"%n", nonce.as_bytes());
    if server.client_final(&last).is_ok() {
        assert!(server.authenticated_user().is_some());
    }
});

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(i) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}
