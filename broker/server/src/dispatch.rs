//! Routes a request frame to its handler and encodes the answer.
//!
//! Unknown API keys and unserved versions get UNSUPPORTED_VERSION (ApiVersions in the v0 form
//! KIP-511 prescribes, so that any client can read it); a header or body that cannot be decoded
//! closes the connection, as Kafka does, because nothing after it can be trusted.

use std::time::Instant;

use bytes::Bytes;
use krait_protocol::api::{api_versions_response, served_version};
use krait_protocol::frame::{
    self, FixedHeader, UNSUPPORTED_VERSION, decode_body, decode_header, encode_response_frame,
};
use krait_protocol::kafka_protocol::messages::ApiKey;
use krait_protocol::kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use krait_protocol::response_frame::ResponseFrame;
use tracing::{Instrument, debug, debug_span, warn};

use crate::broker::Broker;
use crate::context::{Connection, RequestContext};
use crate::handlers;

/// What the connection does after a request.
#[derive(Debug)]
pub enum Outcome {
    /// A response frame; a Fetch response's records in it are the log's buffers, not copies.
    Respond(ResponseFrame),
    /// Produce with acks=0: Kafka sends nothing back.
    NoResponse,
    RespondAndClose(ResponseFrame),
    Close,
}

/// Handles one request frame (without its length prefix) that arrived on `connection`.
pub async fn dispatch(broker: &Broker, connection: &Connection, frame: Bytes) -> Outcome {
    let fixed = match FixedHeader::peek(&frame) {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "unreadable request header, closing connection");
            return Outcome::Close;
        }
    };
    broker.metrics.request(fixed.api_key);
    let span = debug_span!(
        "request",
        api = fixed.api_key,
        version = fixed.api_version,
        correlation_id = fixed.correlation_id
    );
    route(broker, connection, fixed, frame)
        .instrument(span)
        .await
}

async fn route(
    broker: &Broker,
    connection: &Connection,
    fixed: FixedHeader,
    mut frame: Bytes,
) -> Outcome {
    let version = fixed.api_version;
    let Some(support) = served_version(handlers::SERVED, fixed.api_key, version) else {
        if fixed.api_key == ApiKey::ApiVersions as i16 {
            // KIP-511: answer with v0 and the list, so the client can retry with a version we
            // serve.
            let list = api_versions_response(handlers::SERVED, UNSUPPORTED_VERSION);
            return encoded(fixed.correlation_id, 0, &list);
        }
        broker.metrics.request_error();
        warn!(
            api_key = fixed.api_key,
            version, "unsupported API or version"
        );
        return Outcome::RespondAndClose(frame::encode_unsupported(fixed.correlation_id).into());
    };
    let header = match decode_header(&mut frame, support.key, version) {
        Ok(h) => h,
        Err(e) => return undecodable(broker, e),
    };
    if !connection.authenticated() && !SASL_EXCHANGE.contains(&support.key) {
        // Kafka closes a connection that sends anything else before it has authenticated.
        warn!(api = ?support.key, peer = %connection.peer, listener = %connection.listener.name, "request before SASL authentication, closing connection");
        return Outcome::Close;
    }
    if !SASL_EXCHANGE.contains(&support.key) && connection.session_expired(Instant::now()) {
        // KIP-368: the login ran out before the client logged in again (Kafka closes too).
        warn!(api = ?support.key, peer = %connection.peer, principal = %connection.principal(), "SASL session expired (connections.max.reauth.ms), closing connection");
        return Outcome::Close;
    }
    let client_id = header.client_id.as_deref().unwrap_or("");
    debug!(client = client_id, "request");
    let ctx = RequestContext {
        broker,
        api_version: version,
        correlation_id: header.correlation_id,
        client_id,
        connection,
    };
    handlers::route(&ctx, support.key, frame).await
}

/// What an unauthenticated client of a SASL listener may send.
const SASL_EXCHANGE: [ApiKey; 3] = [
    ApiKey::ApiVersions,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
];

/// A handler's answer: a response body, or (Produce with acks=0) none at all.
pub trait Reply {
    type Body: Encodable + HeaderVersion + 'static;
    fn into_body(self) -> Option<Self::Body>;
    /// Whether the connection closes once the answer is sent.
    fn close_after(&self) -> bool {
        false
    }
}

/// A response after which the connection may have to close (a failed SASL login).
#[derive(Debug)]
pub struct Closing<R> {
    response: R,
    close: bool,
}

impl<R> Closing<R> {
    pub fn no(response: R) -> Self {
        Self {
            response,
            close: false,
        }
    }

    pub fn yes(response: R) -> Self {
        Self {
            response,
            close: true,
        }
    }
}

impl<R: Encodable + HeaderVersion + 'static> Reply for Closing<R> {
    type Body = R;
    fn into_body(self) -> Option<R> {
        Some(self.response)
    }
    fn close_after(&self) -> bool {
        self.close
    }
}

impl<R: Encodable + HeaderVersion + 'static> Reply for R {
    type Body = R;
    fn into_body(self) -> Option<R> {
        Some(self)
    }
}

/// A response the client may not want: Kafka sends nothing back to Produce with acks=0.
#[derive(Debug)]
pub struct MaybeResponse<R>(pub Option<R>);

impl<R: Encodable + HeaderVersion + 'static> Reply for MaybeResponse<R> {
    type Body = R;
    fn into_body(self) -> Option<R> {
        self.0
    }
}

/// Decodes the body for `handler`, runs it and encodes its answer.
pub(crate) async fn serve<'a, 'b, Request, Answer>(
    ctx: &'a RequestContext<'b>,
    api: ApiKey,
    mut body: Bytes,
    handler: impl FnOnce(&'a RequestContext<'b>, Request) -> Answer,
) -> Outcome
where
    Request: Decodable + 'static,
    Answer: Future<Output: Reply>,
{
    match decode_body::<Request>(&mut body, api, ctx.api_version) {
        Ok(request) => {
            trailing(&body);
            let reply = handler(ctx, request).await;
            let close = reply.close_after();
            match (reply.into_body(), close) {
                (Some(response), false) => encoded(ctx.correlation_id, ctx.api_version, &response),
                (Some(response), true) => {
                    match encoded(ctx.correlation_id, ctx.api_version, &response) {
                        Outcome::Respond(bytes) => Outcome::RespondAndClose(bytes),
                        other => other,
                    }
                }
                (None, _) => Outcome::NoResponse,
            }
        }
        Err(e) => undecodable(ctx.broker, e),
    }
}

/// An API in `SERVED` that the router has no arm for: the macro makes that impossible, so
/// reaching this is a bug, not client input.
pub(crate) fn unrouted(ctx: &RequestContext<'_>, api: ApiKey) -> Outcome {
    warn!(api = ?api, "API advertised without a handler");
    Outcome::RespondAndClose(frame::encode_unsupported(ctx.correlation_id).into())
}

fn encoded<R: Encodable + HeaderVersion + 'static>(
    correlation_id: i32,
    version: i16,
    response: &R,
) -> Outcome {
    match encode_response_frame(correlation_id, version, response) {
        Ok(frame) => Outcome::Respond(frame),
        Err(e) => {
            warn!(error = %e, "cannot encode response, closing connection");
            Outcome::Close
        }
    }
}

fn trailing(rest: &Bytes) {
    if !rest.is_empty() {
        debug!(
            bytes = rest.len(),
            "ignored trailing bytes after the request body"
        );
    }
}

fn undecodable(broker: &Broker, e: frame::DecodeError) -> Outcome {
    broker.metrics.request_error();
    warn!(error = %e, "undecodable request, closing connection");
    Outcome::Close
}
