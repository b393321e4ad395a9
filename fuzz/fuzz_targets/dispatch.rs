//! Request frames through the broker's dispatch, as one client connection sends them: each
//! length prefix checked as the connection loop checks it (`frame_length`), then
//! `dispatch::dispatch` decodes the header and body, runs the handler against a real broker
//! (its metadata quorum, topics and groups on the in-memory store) and encodes the answer.
//!
//! One broker serves every input, so state carries over (topics, groups, offsets), as on a
//! broker with many clients; partition caps are small so that state stays small. A request
//! that has not finished within a few milliseconds (a long-poll Fetch, a JoinGroup waiting for
//! its rebalance) ends the input, as a client that goes away ends its connection.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use krait_protocol::frame::{LENGTH_PREFIX, frame_length};
use krait_server::broker::Broker;
use krait_server::config::BrokerConfig;
use krait_server::context::Connection;
use krait_server::dispatch::{Outcome, dispatch};
use krait_server::listeners::ListenerSpec;
use krait_storage::{Store, StoreOptions};
use libfuzzer_sys::fuzz_target;
// The broker's allocator (see krait_fuzz).
use krait_fuzz as _;
use tokio::runtime::Runtime;

/// How long one request may take before the input ends.
const REQUEST_DEADLINE: Duration = Duration::from_millis(20);

struct Fixture {
    runtime: Runtime,
    broker: Arc<Broker>,
    listener: Arc<ListenerSpec>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let data_dir = std::env::temp_dir().join(format!("krait-fuzz-dispatch-{}", std::process::id()));
    let config = BrokerConfig::parse_from([
        "krait-broker",
        "--data-dir",
        data_dir.to_str().expect("temp dir is UTF-8"),
        "--max-request-partitions",
        "64",
        "--max-partitions-per-topic",
        "16",
        "--max-partitions",
        "256",
    ]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let advertised = config.validate().expect("fuzz broker config");
    let listeners = config
        .listeners(&advertised)
        .expect("fuzz broker listeners");
    let listener = Arc::new(listeners[0].clone());
    let broker = runtime.block_on(async {
        let store = Store::in_memory(StoreOptions::default());
        let broker = Broker::start(config, advertised, listeners, store, None)
            .await
            .expect("broker starts on the memory store");
        assert!(broker.wait_ready(Duration::from_secs(30)).await);
        broker
    });
    Fixture {
        runtime,
        broker,
        listener,
    }
});

fuzz_target!(|data: &[u8]| {
    let Fixture {
        runtime,
        broker,
        listener,
    } = &*FIXTURE;
    let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let connection = Connection::accepted(peer, listener.clone());
    let max = broker.config.max_request_bytes();
    runtime.block_on(async {
        let mut rest = data;
        while let Some(prefix) = rest.first_chunk::<LENGTH_PREFIX>() {
            let Ok(len) = frame_length(*prefix, max) else {
                return;
            };
            let Some(frame) = rest.get(LENGTH_PREFIX..LENGTH_PREFIX + len) else {
                return;
            };
            rest = &rest[LENGTH_PREFIX + len..];
            let frame = Bytes::copy_from_slice(frame);
            let outcome =
                tokio::time::timeout(REQUEST_DEADLINE, dispatch(broker, &connection, frame)).await;
            match outcome {
                Ok(Outcome::Respond(response)) => check_framed(&response.to_bytes()),
                Ok(Outcome::NoResponse) => {}
                Ok(Outcome::RespondAndClose(response)) => {
                    check_framed(&response.to_bytes());
                    return;
                }
                Ok(Outcome::Close) | Err(_) => return,
            }
        }
    });
});

/// A response's length prefix counts exactly the bytes after it.
fn check_framed(response: &Bytes) {
    let prefix = response
        .first_chunk::<LENGTH_PREFIX>()
        .expect("a response has a length prefix");
    let len = i32::from_be_bytes(*prefix);
    assert_eq!(
        usize::try_from(len).ok(),
        Some(response.len() - LENGTH_PREFIX),
        "response length prefix"
    );
}
