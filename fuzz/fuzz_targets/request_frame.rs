//! A request frame (without its length prefix) as the broker reads it: the fixed header, then
//! for every API key and version kafka-protocol knows, the full request header and the body,
//! with krait-protocol's decoders. Any input must give a value or an error, never a panic.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use krait_protocol::frame::{FixedHeader, decode_header};
use libfuzzer_sys::fuzz_target;

// The broker's allocator (see krait_fuzz).
use krait_fuzz as _;

fuzz_target!(|data: &[u8]| {
    let Ok(fixed) = FixedHeader::peek(data) else {
        return;
    };
    let Ok(api) = ApiKey::try_from(fixed.api_key) else {
        return;
    };
    let versions = api.valid_versions();
    if fixed.api_version < versions.min || fixed.api_version > versions.max {
        return;
    }
    let mut frame = Bytes::copy_from_slice(data);
    if decode_header(&mut frame, api, fixed.api_version).is_ok() {
        let _ = RequestKind::decode(api, &mut frame, fixed.api_version);
    }
});
