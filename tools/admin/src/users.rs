//! SCRAM users through the admin protocol: AlterUserScramCredentials (set or delete one
//! mechanism's credential) and DescribeUserScramCredentials (which mechanisms and iteration
//! counts a user has). The client salts and hashes: the password never leaves this process.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::describe_user_scram_credentials_response::DescribeUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use krait_auth::scram::{GENERATED_SALT_LEN, ScramMechanism};
use rand::Rng;
use serde::Serialize;

use crate::cluster::{Admin, AdminError, Result, text};

/// Kafka's default and minimum iteration count for SCRAM credentials.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// One credential of a user, as DescribeUserScramCredentials reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScramCredentialInfo {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512` (or `UNKNOWN(n)` for a code this client lacks).
    pub mechanism: String,
    pub iterations: i32,
}

/// A user and its SCRAM credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScramUser {
    pub user: String,
    pub credentials: Vec<ScramCredentialInfo>,
}

/// The upsertion that sets `password` for `user` with `salt` and `iterations`.
pub fn upsertion(
    user: &str,
    mechanism: ScramMechanism,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> ScramCredentialUpsertion {
    let salted = mechanism.salted_password(password.as_bytes(), salt, iterations);
    ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(user.to_string()))
        .with_mechanism(mechanism.kafka_type())
        .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
        .with_salt(salt.to_vec().into())
        .with_salted_password(salted.into())
}

/// Plain data from one DescribeUserScramCredentials result.
pub fn user_of(result: &DescribeUserScramCredentialsResult) -> ScramUser {
    ScramUser {
        user: text(&result.user),
        credentials: result
            .credential_infos
            .iter()
            .map(|c| ScramCredentialInfo {
                mechanism: ScramMechanism::from_kafka_type(c.mechanism)
                    .map_or_else(|| format!("UNKNOWN({})", c.mechanism), |m| m.name().into()),
                iterations: c.iterations,
            })
            .collect(),
    }
}

impl Admin {
    /// Sets `user`'s password for `mechanism`, with a fresh random salt.
    pub fn set_scram_password(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<()> {
        let mut salt = vec![0u8; GENERATED_SALT_LEN];
        rand::rng().fill(&mut salt[..]);
        let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion(
            user, mechanism, password, &salt, iterations,
        )]);
        self.alter_scram(request, "setting the SCRAM password of")
    }

    /// Deletes `user`'s credential for `mechanism`.
    pub fn delete_scram(&mut self, user: &str, mechanism: ScramMechanism) -> Result<()> {
        let deletion = ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(user.to_string()))
            .with_mechanism(mechanism.kafka_type());
        let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]);
        self.alter_scram(request, "deleting the SCRAM credential of")
    }

    fn alter_scram(&mut self, request: AlterUserScramCredentialsRequest, what: &str) -> Result<()> {
        let response: AlterUserScramCredentialsResponse =
            self.bootstrap_connection().call(&request, 0..=0)?;
        match response.results.iter().find(|r| r.error_code != 0) {
            Some(r) => Err(AdminError::refused(
                format!("{what} user {}", text(&r.user)),
                r.error_code,
                r.error_message.as_ref(),
            )),
            None => Ok(()),
        }
    }

    /// The SCRAM credentials of `users` (every user with one when `None`), sorted by name. A
    /// named user without credentials is an error.
    pub fn describe_scram_users(&mut self, users: Option<&[String]>) -> Result<Vec<ScramUser>> {
        let request = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
            u.iter()
                .map(|n| UserName::default().with_name(StrBytes::from_string(n.clone())))
                .collect()
        }));
        let response = self.bootstrap_connection().call(&request, 0..=0)?;
        if response.error_code != 0 {
            return Err(AdminError::refused(
                "DescribeUserScramCredentials",
                response.error_code,
                response.error_message.as_ref(),
            ));
        }
        if let Some(r) = response.results.iter().find(|r| r.error_code != 0) {
            return Err(AdminError::refused(
                format!("describing user {}", text(&r.user)),
                r.error_code,
                r.error_message.as_ref(),
            ));
        }
        let mut out: Vec<ScramUser> = response.results.iter().map(user_of).collect();
        out.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(out)
    }
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
