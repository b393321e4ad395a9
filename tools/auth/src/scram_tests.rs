//! Specifications of the SCRAM exchange: RFC 7677's published vector, round trips for both
//! mechanisms, and every way a client can be refused.

use super::*;
use rand::RngCore as _;
use std::sync::LazyLock;

const RFC7677_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC7677_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC7677_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC7677_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC7677_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/// Derived once: PBKDF2 with 4096 rounds is slow in unoptimised test builds.
static RFC7677_CREDENTIAL: LazyLock<ScramCredential> = LazyLock::new(|| {
    let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    ScramCredential::from_password(ScramMechanism::Sha256, b"pencil", &salt, 4096)
});

fn rfc7677_credential() -> ScramCredential {
    RFC7677_CREDENTIAL.clone()
}

fn credential(mechanism: ScramMechanism, password: &[u8]) -> ScramCredential {
    ScramCredential::generate(mechanism, password, mechanism.min_iterations())
}

/// Runs a whole exchange; the server knows `user` with `stored_password`.
fn exchange(
    mechanism: ScramMechanism,
    user: &str,
    stored_password: &[u8],
    client_password: &[u8],
) -> Result<(ScramServer, ScramClient, Vec<u8>), ScramError> {
    let stored = credential(mechanism, stored_password);
    let mut server = ScramServer::new(mechanism);
    let mut client = ScramClient::new(mechanism, user, client_password);
    let server_first = server.client_first(&client.first_message(), |name| {
        (name == user).then(|| stored.clone())
    })?;
    let client_final = client.final_message(&server_first)?;
    let server_final = server.client_final(&client_final)?;
    Ok((server, client, server_final))
}

/// A server that has answered `client_first` for user "user" with password "pencil".
fn server_after_first(client_first: &str) -> (ScramServer, Result<Vec<u8>, ScramError>) {
    let mut server = ScramServer::with_nonce(ScramMechanism::Sha256, RFC7677_SERVER_NONCE);
    let reply = server.client_first(client_first.as_bytes(), |_| Some(rfc7677_credential()));
    (server, reply)
}

#[test]
fn the_server_reproduces_the_rfc_7677_sha_256_exchange() {
    let (mut server, reply) = server_after_first(RFC7677_CLIENT_FIRST);
    assert_eq!(reply.unwrap(), RFC7677_SERVER_FIRST.as_bytes());
    let server_final = server
        .client_final(RFC7677_CLIENT_FINAL.as_bytes())
        .unwrap();
    assert_eq!(server_final, RFC7677_SERVER_FINAL.as_bytes());
    assert_eq!(server.authenticated_user(), Some("user"));
}

#[test]
fn the_client_reproduces_the_rfc_7677_sha_256_exchange() {
    let mut client = ScramClient::with_nonce(
        ScramMechanism::Sha256,
        "user",
        b"pencil",
        "rOprNGfwEbeRWgbNEkqO",
    );
    assert_eq!(client.first_message(), RFC7677_CLIENT_FIRST.as_bytes());
    let client_final = client
        .final_message(RFC7677_SERVER_FIRST.as_bytes())
        .unwrap();
    assert_eq!(client_final, RFC7677_CLIENT_FINAL.as_bytes());
    client
        .verify_server_final(RFC7677_SERVER_FINAL.as_bytes())
        .unwrap();
}

#[test]
fn a_client_and_server_agree_for_both_mechanisms() {
    for mechanism in ScramMechanism::ALL {
        let (server, client, server_final) =
            exchange(mechanism, "alice", b"secret", b"secret").unwrap();
        assert_eq!(server.authenticated_user(), Some("alice"));
        client.verify_server_final(&server_final).unwrap();
        let proof_len = BASE64.decode(&server_final[2..]).unwrap().len();
        assert_eq!(proof_len, mechanism.hash_len());
    }
}

#[test]
fn a_client_proof_made_with_the_wrong_password_is_refused() {
    for mechanism in ScramMechanism::ALL {
        let err = exchange(mechanism, "alice", b"secret", b"guess").unwrap_err();
        assert_eq!(err, ScramError::InvalidProof);
    }
}

#[test]
fn a_refused_exchange_authenticates_nobody_and_cannot_continue() {
    let (mut server, _) = server_after_first(RFC7677_CLIENT_FIRST);
    let wrong = RFC7677_CLIENT_FINAL.replace("p=dHzb", "p=dHzc");
    assert_eq!(
        server.client_final(wrong.as_bytes()),
        Err(ScramError::InvalidProof)
    );
    assert_eq!(server.authenticated_user(), None);
    assert_eq!(
        server.client_final(RFC7677_CLIENT_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder)
    );
}

#[test]
fn an_unknown_user_is_refused() {
    let mut server = ScramServer::new(ScramMechanism::Sha512);
    let err = server
        .client_first(b"n,,n=nobody,r=abc", |_| None)
        .unwrap_err();
    assert_eq!(err, ScramError::UnknownUser("nobody".to_string()));
}

#[test]
fn a_credential_of_the_other_mechanism_is_refused() {
    let mut server = ScramServer::new(ScramMechanism::Sha512);
    let err = server
        .client_first(b"n,,n=user,r=abc", |_| Some(rfc7677_credential()))
        .unwrap_err();
    assert!(matches!(err, ScramError::MechanismMismatch { .. }));
}

#[test]
fn a_credential_below_the_minimum_iterations_is_refused() {
    let weak = ScramCredential::from_password(ScramMechanism::Sha256, b"pencil", b"salt", 4095);
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    let err = server
        .client_first(b"n,,n=user,r=abc", |_| Some(weak))
        .unwrap_err();
    assert!(matches!(
        err,
        ScramError::InvalidIterations { got: 4095, .. }
    ));
}

#[test]
fn a_tampered_nonce_is_refused() {
    let (mut server, _) = server_after_first(RFC7677_CLIENT_FIRST);
    let tampered = RFC7677_CLIENT_FINAL.replace("hNlF$k0", "hNlF$k1");
    assert_eq!(
        server.client_final(tampered.as_bytes()),
        Err(ScramError::NonceMismatch)
    );
}

/// A client-final message echoing `echoed` as its nonce, with a proof that is right for it.
fn rfc7677_final_echoing(echoed: &str) -> String {
    let mechanism = ScramMechanism::Sha256;
    let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let salted = mechanism.salted_password(b"pencil", &salt, 4096);
    let client_key = mechanism.hmac(&salted, b"Client Key");
    let without_proof = format!("c=biws,r={echoed}");
    let auth_message = format!(
        "{},{RFC7677_SERVER_FIRST},{without_proof}",
        RFC7677_CLIENT_FIRST.trim_start_matches("n,,")
    );
    let proof = mechanism.client_proof(&client_key, &auth_message);
    format!("{without_proof},p={}", BASE64.encode(proof))
}

#[test]
fn old_librdkafkas_doubled_client_nonce_is_accepted_but_a_missing_server_nonce_is_not() {
    let full = format!("rOprNGfwEbeRWgbNEkqO{RFC7677_SERVER_NONCE}");
    // librdkafka before 2.6.1 sends its own nonce, then the whole nonce of server-first.
    let (mut server, _) = server_after_first(RFC7677_CLIENT_FIRST);
    let doubled = rfc7677_final_echoing(&format!("rOprNGfwEbeRWgbNEkqO{full}"));
    assert!(server.client_final(doubled.as_bytes()).is_ok());
    assert_eq!(server.authenticated_user(), Some("user"));
    // Echoing only the client's nonce would let a recorded exchange be replayed.
    let (mut server, _) = server_after_first(RFC7677_CLIENT_FIRST);
    let replayable = rfc7677_final_echoing("rOprNGfwEbeRWgbNEkqO");
    assert_eq!(
        server.client_final(replayable.as_bytes()),
        Err(ScramError::NonceMismatch)
    );
}

#[test]
fn a_server_nonce_that_does_not_extend_the_client_nonce_is_refused_by_the_client() {
    let mut client = ScramClient::with_nonce(ScramMechanism::Sha256, "user", b"pencil", "abc");
    let err = client
        .final_message(b"r=xyz123,s=c2FsdA==,i=4096")
        .unwrap_err();
    assert_eq!(err, ScramError::NonceMismatch);
    let err = client
        .final_message(b"r=abc,s=c2FsdA==,i=4096")
        .unwrap_err();
    assert_eq!(err, ScramError::NonceMismatch);
}

#[test]
fn channel_binding_that_is_not_the_gs2_header_is_refused() {
    let (mut server, _) = server_after_first(RFC7677_CLIENT_FIRST);
    // "eSws" is base64 of "y,,", but the client sent "n,,".
    let rebound = RFC7677_CLIENT_FINAL.replace("c=biws", "c=eSws");
    assert_eq!(
        server.client_final(rebound.as_bytes()),
        Err(ScramError::ChannelBindingMismatch)
    );
}

#[test]
fn a_client_asking_for_channel_binding_is_refused() {
    let (_, reply) = server_after_first("p=tls-unique,,n=user,r=abc");
    assert_eq!(reply, Err(ScramError::ChannelBindingUnsupported));
}

#[test]
fn a_client_that_supports_channel_binding_but_does_not_use_it_is_accepted() {
    let (_, reply) = server_after_first("y,,n=user,r=abc");
    assert!(reply.is_ok());
}

#[test]
fn an_authzid_must_be_the_user_itself() {
    let (_, reply) = server_after_first("n,a=user,n=user,r=abc");
    assert!(reply.is_ok());
    let (_, reply) = server_after_first("n,a=admin,n=user,r=abc");
    assert_eq!(
        reply,
        Err(ScramError::AuthzidMismatch {
            authzid: "admin".to_string(),
            user: "user".to_string()
        })
    );
}

#[test]
fn token_authentication_is_refused_and_other_extensions_are_ignored() {
    let (_, reply) = server_after_first("n,,n=user,r=abc,tokenauth=true");
    assert_eq!(
        reply,
        Err(ScramError::UnsupportedExtension("tokenauth".to_string()))
    );
    let (_, reply) = server_after_first("n,,n=user,r=abc,tokenauth=false,colour=blue");
    assert!(reply.is_ok());
}

#[test]
fn a_mandatory_extension_is_refused() {
    let (_, reply) = server_after_first("n,,m=ext,n=user,r=abc");
    assert!(matches!(reply, Err(ScramError::Malformed(_))));
}

#[test]
fn messages_out_of_order_are_refused() {
    let mut server = ScramServer::new(ScramMechanism::Sha256);
    assert_eq!(
        server.client_final(RFC7677_CLIENT_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder)
    );
    let (mut server, reply) = server_after_first(RFC7677_CLIENT_FIRST);
    reply.unwrap();
    let again = server.client_first(RFC7677_CLIENT_FIRST.as_bytes(), |_| {
        Some(rfc7677_credential())
    });
    assert_eq!(again, Err(ScramError::OutOfOrder));
    let client = ScramClient::new(ScramMechanism::Sha256, "user", b"pencil");
    assert_eq!(
        client.verify_server_final(RFC7677_SERVER_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder)
    );
}

#[test]
fn a_message_over_the_length_bound_is_refused() {
    let long = format!("n,,n=user,r={}", "a".repeat(MAX_MESSAGE_LEN));
    let (_, reply) = server_after_first(&long);
    assert_eq!(reply, Err(ScramError::TooLong(long.len())));
}

#[test]
fn malformed_messages_are_refused_without_panicking() {
    let cases: &[&[u8]] = &[
        b"",
        b"n",
        b"n,,",
        b"x,,n=user,r=abc",
        b"n,,r=abc,n=user",
        b"n,,n=,r=abc",
        b"n,,n=user,r=",
        b"n,,n=us=er,r=abc",
        b"n,,n=user,r=a,b",
        b"n,,n=user",
        b"\xff\xfe",
    ];
    for case in cases {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let reply = server.client_first(case, |_| Some(rfc7677_credential()));
        assert!(
            reply.is_err(),
            "{:?} accepted",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn random_bytes_never_panic_either_step() {
    let mut rng = rand::rng();
    for round in 0..2000 {
        let mut bytes = vec![0u8; rng.random_range(0..64)];
        rng.fill_bytes(&mut bytes);
        // Half the rounds get a valid prefix so the parser goes deeper than the first byte.
        let message = if round % 2 == 0 {
            [b"n,,n=user,r=".as_slice(), &bytes].concat()
        } else {
            bytes.clone()
        };
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        let _ = server.client_first(&message, |_| Some(rfc7677_credential()));
        let (mut server, _) = server_after_first(RFC7677_CLIENT_FIRST);
        let final_message = [b"c=biws,r=".as_slice(), &bytes].concat();
        assert!(server.client_final(&final_message).is_err());
        let mut client = ScramClient::new(ScramMechanism::Sha256, "user", b"pencil");
        let _ = client.final_message(&message);
        let _ = client.verify_server_final(&bytes);
    }
}

#[test]
fn user_names_with_commas_and_equals_signs_are_escaped_and_decoded() {
    assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
    assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
    assert!(decode_saslname("a=2").is_err());
    assert!(decode_saslname("a=41").is_err());
    let (server, client, server_final) =
        exchange(ScramMechanism::Sha512, "CN=x,O=y", b"pw", b"pw").unwrap();
    assert_eq!(server.authenticated_user(), Some("CN=x,O=y"));
    assert!(
        String::from_utf8(client.first_message())
            .unwrap()
            .contains("n=CN=3Dx=2CO=3Dy,")
    );
    client.verify_server_final(&server_final).unwrap();
}

#[test]
fn a_forged_server_signature_is_refused_by_the_client() {
    let mut client = ScramClient::with_nonce(
        ScramMechanism::Sha256,
        "user",
        b"pencil",
        "rOprNGfwEbeRWgbNEkqO",
    );
    client
        .final_message(RFC7677_SERVER_FIRST.as_bytes())
        .unwrap();
    let forged = RFC7677_SERVER_FINAL.replace("v=6rri", "v=6rrj");
    assert_eq!(
        client.verify_server_final(forged.as_bytes()),
        Err(ScramError::InvalidServerSignature)
    );
    assert_eq!(
        client.verify_server_final(b"e=invalid-proof"),
        Err(ScramError::ServerError("invalid-proof".to_string()))
    );
}

#[test]
fn a_client_refuses_iteration_counts_outside_kafkas_bounds() {
    for i in [1, 4095, MAX_ITERATIONS + 1] {
        let mut client = ScramClient::with_nonce(ScramMechanism::Sha256, "u", b"p", "abc");
        let server_first = format!("r=abcdef,s=c2FsdA==,i={i}");
        let err = client.final_message(server_first.as_bytes()).unwrap_err();
        assert!(matches!(err, ScramError::InvalidIterations { got, .. } if got == i));
    }
}

#[test]
fn a_credential_from_the_salted_password_equals_one_from_the_password() {
    for mechanism in ScramMechanism::ALL {
        let salted = mechanism.salted_password(b"pencil", b"NaCl", 4096);
        assert_eq!(
            ScramCredential::from_salted_password(mechanism, &salted, b"NaCl", 4096),
            ScramCredential::from_password(mechanism, b"pencil", b"NaCl", 4096)
        );
    }
}

#[test]
fn a_credential_verifies_its_own_password_only() {
    for mechanism in ScramMechanism::ALL {
        let stored = credential(mechanism, b"pencil");
        assert_eq!(stored.salt.len(), GENERATED_SALT_LEN);
        assert!(stored.verify_password(b"pencil"));
        assert!(!stored.verify_password(b"pencil2"));
        assert!(!stored.verify_password(b""));
    }
}

#[test]
fn generated_credentials_use_fresh_salts() {
    let a = credential(ScramMechanism::Sha256, b"pencil");
    let b = credential(ScramMechanism::Sha256, b"pencil");
    assert_ne!(a.salt, b.salt);
    assert_ne!(a.stored_key, b.stored_key);
}

#[test]
fn mechanisms_have_kafkas_names_and_ids() {
    assert_eq!(ScramMechanism::Sha256.name(), "SCRAM-SHA-256");
    assert_eq!(ScramMechanism::Sha512.name(), "SCRAM-SHA-512");
    assert_eq!(ScramMechanism::Sha256.kafka_type(), 1);
    assert_eq!(ScramMechanism::Sha512.kafka_type(), 2);
    for mechanism in ScramMechanism::ALL {
        assert_eq!(ScramMechanism::from_name(mechanism.name()), Some(mechanism));
        assert_eq!(
            ScramMechanism::from_kafka_type(mechanism.kafka_type()),
            Some(mechanism)
        );
        assert_eq!(mechanism.min_iterations(), 4096);
    }
    assert_eq!(ScramMechanism::from_name("PLAIN"), None);
    assert_eq!(ScramMechanism::from_kafka_type(0), None);
}

#[test]
fn debug_output_leaks_no_keys() {
    let stored = rfc7677_credential();
    let text = format!("{stored:?}");
    assert!(!text.contains("stored_key") && !text.contains("server_key"));
    let (server, _) = server_after_first(RFC7677_CLIENT_FIRST);
    let text = format!("{server:?}");
    assert!(text.contains("awaiting client-final") && !text.contains("key"));
    let client = ScramClient::new(ScramMechanism::Sha256, "user", b"pencil");
    assert!(!format!("{client:?}").contains("pencil"));
}

#[test]
fn an_unknown_user_and_a_wrong_password_read_alike_to_the_client() {
    let unknown = ScramError::UnknownUser("nobody".to_string()).client_message();
    assert_eq!(unknown, ScramError::InvalidProof.client_message());
    assert!(!unknown.contains("nobody"));
    assert!(
        ScramError::OutOfOrder
            .client_message()
            .starts_with("Authentication failed: ")
    );
}
