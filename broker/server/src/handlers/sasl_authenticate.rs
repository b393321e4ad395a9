//! SaslAuthenticate: one token of the chosen SASL mechanism. PLAIN takes one round, SCRAM two;
//! both check against the SCRAM credentials in the replicated metadata, so there is one user
//! store. A failed login answers SASL_AUTHENTICATION_FAILED and closes the connection, as
//! Kafka does; the reason is logged, not told (an attacker learns nothing about which users
//! exist).
//!
//! With `connections.max.reauth.ms` set, a login lasts that long (KIP-368): v1+ tells the
//! client in `session_lifetime_ms`, the client logs in again on the same connection, as the
//! same principal, and the dispatch closes a connection whose login has run out.

use std::time::{Duration, Instant};

use krait_auth::plain;
use krait_auth::scram::{ScramCredential, ScramServer};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;
use krait_sync::MutexExt;

use crate::context::{Principal, RequestContext};
use crate::dispatch::Closing;
use crate::listeners::SaslMechanism;
use crate::sasl::SaslState;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: SaslAuthenticateRequest,
) -> Closing<SaslAuthenticateResponse> {
    let mut state = ctx.connection.sasl.lock_unpoisoned();
    let step = match std::mem::replace(&mut *state, SaslState::Done) {
        SaslState::Chosen(mechanism) => first_token(ctx, mechanism, &request.auth_bytes),
        SaslState::Scram(mechanism, mut server) => match server.client_final(&request.auth_bytes) {
            Ok(server_final) => match server.authenticated_user() {
                Some(user) => Step::Authenticated(mechanism, user.to_string(), server_final),
                None => Step::Failed("SCRAM exchange ended without a user".into()),
            },
            Err(e) => Step::Failed(e.to_string()),
        },
        SaslState::Handshake | SaslState::Authenticated(_) | SaslState::Done => Step::IllegalState,
    };
    let mut response = SaslAuthenticateResponse::default();
    match step {
        Step::Continue(next, token) => {
            *state = next;
            response.auth_bytes = token.into();
            Closing::no(response)
        }
        Step::Authenticated(mechanism, user, token) => {
            let principal = Principal::user(&user);
            tracing::debug!(%principal, peer = %ctx.connection.peer, "authenticated");
            let lifetime_ms = ctx.broker.config.connections_max_reauth_ms;
            let lifetime = (lifetime_ms > 0).then(|| Duration::from_millis(lifetime_ms));
            if !ctx
                .connection
                .authenticate(principal, lifetime, Instant::now())
            {
                // Kafka's words: a re-authentication may not change who the connection is.
                return failed(
                    response,
                    ResponseError::SaslAuthenticationFailed,
                    "Cannot change principals during re-authentication",
                );
            }
            *state = SaslState::Authenticated(mechanism);
            if ctx.api_version >= 1 {
                // v0 has no field for it: such a client is closed at expiry, as by Kafka.
                response.session_lifetime_ms = i64::try_from(lifetime_ms).unwrap_or(i64::MAX);
            }
            response.auth_bytes = token.into();
            Closing::no(response)
        }
        Step::Failed(reason) => {
            ctx.broker.metrics.authentication_failed();
            tracing::info!(peer = %ctx.connection.peer, listener = %ctx.connection.listener.name, %reason, "SASL authentication failed");
            failed(
                response,
                ResponseError::SaslAuthenticationFailed,
                "Authentication failed: Invalid username or password",
            )
        }
        Step::IllegalState => failed(
            response,
            ResponseError::IllegalSaslState,
            "SaslAuthenticate request not expected at this point",
        ),
    }
}

enum Step {
    Continue(SaslState, Vec<u8>),
    Authenticated(SaslMechanism, String, Vec<u8>),
    Failed(String),
    IllegalState,
}

fn first_token(ctx: &RequestContext<'_>, mechanism: SaslMechanism, token: &[u8]) -> Step {
    let image = ctx.broker.cluster.image();
    match mechanism {
        SaslMechanism::Plain => {
            let credentials = |user: &str| -> Vec<ScramCredential> {
                image
                    .scram
                    .get(user)
                    .map(|c| c.values().cloned().collect())
                    .unwrap_or_default()
            };
            match plain::authenticate(token, credentials) {
                Ok(user) => Step::Authenticated(mechanism, user, Vec::new()),
                Err(e) => Step::Failed(e.to_string()),
            }
        }
        SaslMechanism::Scram(m) => {
            let mut server = ScramServer::new(m);
            let lookup = |user: &str| image.scram.get(user).and_then(|c| c.get(&m)).cloned();
            match server.client_first(token, lookup) {
                Ok(server_first) => {
                    Step::Continue(SaslState::Scram(mechanism, Box::new(server)), server_first)
                }
                Err(e) => Step::Failed(e.to_string()),
            }
        }
    }
}

fn failed(
    mut response: SaslAuthenticateResponse,
    code: ResponseError,
    message: &str,
) -> Closing<SaslAuthenticateResponse> {
    response.error_code = code.code();
    response.error_message = Some(StrBytes::from_string(message.to_string()));
    Closing::yes(response)
}
