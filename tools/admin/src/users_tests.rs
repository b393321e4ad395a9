//! SCRAM users: the client salts and hashes as the server will check, and answers read back
//! into plain data.

use std::time::Duration;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::CredentialInfo;
use kafka_protocol::messages::{ApiVersionsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::protocol::{Decodable, Request};
use krait_auth::scram::ScramCredential;

use super::*;
use crate::fake_broker::{FakeBroker, answer, api_versions};

#[test]
fn an_upsertion_carries_a_salted_password_the_server_can_verify() {
    let salt = [7u8; 32];
    let u = upsertion("alice", ScramMechanism::Sha512, "secret", &salt, 4096);
    assert_eq!(
        (u.name.as_str(), u.mechanism, u.iterations),
        ("alice", 2, 4096)
    );
    assert_eq!(&u.salt[..], &salt);
    let stored = ScramCredential::from_salted_password(
        ScramMechanism::Sha512,
        &u.salted_password,
        &salt,
        4096,
    );
    assert!(stored.verify_password(b"secret"));
    assert!(!stored.verify_password(b"Secret"));
}

#[test]
fn described_credentials_name_their_mechanism() {
    let result = DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_static_str("alice"))
        .with_credential_infos(vec![
            CredentialInfo::default()
                .with_mechanism(1)
                .with_iterations(8192),
            CredentialInfo::default()
                .with_mechanism(9)
                .with_iterations(4096),
        ]);
    let user = user_of(&result);
    assert_eq!(user.user, "alice");
    assert_eq!(user.credentials[0].mechanism, "SCRAM-SHA-256");
    assert_eq!(user.credentials[0].iterations, 8192);
    assert_eq!(user.credentials[1].mechanism, "UNKNOWN(9)");
}

/// Knows `alice` (SCRAM-SHA-512); any other named user is RESOURCE_NOT_FOUND, and every
/// alteration is refused for user `root`.
fn user_broker() -> FakeBroker {
    FakeBroker::start(|h, mut body| {
        let v = h.request_api_version;
        match h.request_api_key {
            ApiVersionsRequest::KEY => answer(
                h,
                &api_versions(&[
                    (AlterUserScramCredentialsRequest::KEY, 0, 0),
                    (DescribeUserScramCredentialsRequest::KEY, 0, 0),
                ]),
                v,
            ),
            AlterUserScramCredentialsRequest::KEY => {
                let r = AlterUserScramCredentialsRequest::decode(&mut body, v).unwrap();
                let names = r.upsertions.iter().map(|u| u.name.clone());
                let names = names.chain(r.deletions.iter().map(|d| d.name.clone()));
                let results = names
                    .map(|n| {
                        let refused = n.as_str() == "root";
                        AlterUserScramCredentialsResult::default()
                            .with_user(n)
                            .with_error_code(if refused { 29 } else { 0 })
                    })
                    .collect();
                answer(
                    h,
                    &AlterUserScramCredentialsResponse::default().with_results(results),
                    v,
                )
            }
            DescribeUserScramCredentialsRequest::KEY => {
                let r = DescribeUserScramCredentialsRequest::decode(&mut body, v).unwrap();
                let names = r.users.map_or_else(
                    || vec![StrBytes::from_static_str("alice")],
                    |u| u.into_iter().map(|n| n.name).collect(),
                );
                let results = names
                    .into_iter()
                    .map(|n| {
                        let known = n.as_str() == "alice";
                        DescribeUserScramCredentialsResult::default()
                            .with_user(n)
                            .with_error_code(if known { 0 } else { 91 })
                            .with_credential_infos(if known {
                                vec![
                                    CredentialInfo::default()
                                        .with_mechanism(2)
                                        .with_iterations(4096),
                                ]
                            } else {
                                vec![]
                            })
                    })
                    .collect();
                let response =
                    DescribeUserScramCredentialsResponse::default().with_results(results);
                answer(h, &response, v)
            }
            other => panic!("unexpected API {other}"),
        }
    })
}

#[test]
fn users_are_set_described_and_deleted() {
    let fake = user_broker();
    let mut admin = Admin::connect(&fake.address, Duration::from_secs(5)).unwrap();
    admin
        .set_scram_password(
            "alice",
            ScramMechanism::Sha512,
            "secret",
            DEFAULT_ITERATIONS,
        )
        .unwrap();
    admin.delete_scram("alice", ScramMechanism::Sha256).unwrap();
    let all = admin.describe_scram_users(None).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].credentials[0].mechanism, "SCRAM-SHA-512");
}

#[test]
fn a_refused_alteration_or_an_unknown_user_names_the_user() {
    let fake = user_broker();
    let mut admin = Admin::connect(&fake.address, Duration::from_secs(5)).unwrap();
    let err = admin
        .set_scram_password("root", ScramMechanism::Sha512, "x", DEFAULT_ITERATIONS)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("setting the SCRAM password of user root failed: "),
        "{err}"
    );
    let err = admin
        .describe_scram_users(Some(&["bob".to_string()]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("describing user bob failed: ResourceNotFound (91)"),
        "{err}"
    );
}
