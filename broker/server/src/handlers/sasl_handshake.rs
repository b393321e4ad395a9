//! SaslHandshake: the client names the SASL mechanism it will authenticate with. v1's tokens
//! travel in SaslAuthenticate requests. v0 is listed because librdkafka before 2.10 looks for
//! it before it uses v1, but a v0 handshake (whose raw tokens on the socket only clients older
//! than Kafka 1.0 send) is refused with UNSUPPORTED_SASL_MECHANISM and the mechanisms list.
//! A logged-in client starts a re-authentication (KIP-368) with another handshake, for the
//! mechanism it logged in with (another is refused, as Kafka refuses it).

use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;
use krait_sync::MutexExt;

use crate::context::RequestContext;
use crate::listeners::SaslMechanism;
use crate::sasl::SaslState;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=1;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let listener = &ctx.connection.listener;
    let mut response = SaslHandshakeResponse::default();
    response.mechanisms = listener
        .sasl_mechanisms
        .iter()
        .map(|m| StrBytes::from_static_str(m.name()))
        .collect();
    let mut state = ctx.connection.sasl.lock_unpoisoned();
    // A logged-in client may log in again (KIP-368 re-authentication), with the same mechanism.
    let previous = match *state {
        SaslState::Handshake => None,
        SaslState::Authenticated(m) => Some(m),
        _ => {
            response.error_code = ResponseError::IllegalSaslState.code();
            return response;
        }
    };
    if !listener.protocol.sasl() {
        response.error_code = ResponseError::IllegalSaslState.code();
        return response;
    }
    if ctx.api_version == 0 {
        tracing::info!(peer = %ctx.connection.peer, "SaslHandshake v0 (raw SASL tokens) is not served; the client must use v1");
        response.error_code = ResponseError::UnsupportedSaslMechanism.code();
        return response;
    }
    match SaslMechanism::parse(&request.mechanism)
        .filter(|m| listener.sasl_mechanisms.contains(m))
        .filter(|m| previous.is_none_or(|p| p == *m))
    {
        Some(m) => *state = SaslState::Chosen(m),
        None => {
            tracing::debug!(mechanism = %request.mechanism.as_str(), listener = %listener.name, "SASL mechanism not enabled");
            response.error_code = ResponseError::UnsupportedSaslMechanism.code();
        }
    }
    response
}
