//! Request and response codecs for the versions Kafka 4.0 removed (KIP-896) and Kafka 3.9
//! still serves, which the `kafka-protocol` crate (4.x specs) has no codecs for.
//!
//! An old request decodes into the crate's request struct, the fields its version lacks set to
//! Kafka's defaults, so a handler serves every version alike; the handler's response struct
//! encodes at the old version. Where an old version is another one on the wire, the crate's own
//! codec runs at that version. Decoders read through the frame's budgeted buffer and never size
//! an array beyond what the bytes left can hold.
//!
//! Not here: Produce v0–2 and Fetch v0–3, which carry magic 0/1 message sets that would need
//! converting to and from the stored v2 batches.

mod acls;
mod admin;
mod groups;
mod offsets;
mod wire;

use std::any::Any;
use std::ops::RangeInclusive;

use anyhow::{Result, anyhow};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, CreateAclsResponse, CreateTopicsResponse, DeleteAclsResponse, DeleteTopicsResponse,
    DescribeAclsResponse, DescribeConfigsResponse, DescribeLogDirsResponse, ListOffsetsResponse,
    OffsetCommitResponse, OffsetFetchResponse, OffsetForLeaderEpochResponse,
};
use kafka_protocol::protocol::buf::ByteBuf;
use kafka_protocol::protocol::{Encodable, VersionRange};

/// The versions below the crate's range that this module has codecs for.
pub fn versions(api: ApiKey) -> Option<RangeInclusive<i16>> {
    match api {
        ApiKey::ListOffsets => Some(0..=0),
        ApiKey::OffsetCommit => Some(0..=1),
        ApiKey::OffsetFetch => Some(0..=0),
        ApiKey::CreateTopics => Some(0..=1),
        ApiKey::DeleteTopics => Some(0..=0),
        ApiKey::DescribeConfigs => Some(0..=0),
        ApiKey::DescribeLogDirs => Some(0..=0),
        ApiKey::OffsetForLeaderEpoch => Some(0..=1),
        ApiKey::CreateAcls | ApiKey::DescribeAcls | ApiKey::DeleteAcls => Some(0..=0),
        _ => None,
    }
}

/// Whether `version` of `api` is decoded and encoded here rather than by the crate.
pub fn serves(api: ApiKey, version: i16) -> bool {
    versions(api).is_some_and(|v| v.contains(&version))
}

/// Every version of `api` with a codec: this module's and the crate's.
pub fn valid_versions(api: ApiKey) -> VersionRange {
    let crate_range = api.valid_versions();
    VersionRange {
        min: versions(api).map_or(crate_range.min, |v| *v.start()),
        max: crate_range.max,
    }
}

/// Decodes a legacy request body of `api` into `T`, the crate's request struct for `api`.
pub fn decode_request<T: 'static, B: ByteBuf>(api: ApiKey, version: i16, buf: &mut B) -> Result<T> {
    match api {
        ApiKey::ListOffsets => cast(offsets::decode_list_offsets(buf)?),
        ApiKey::OffsetCommit => cast(groups::decode_offset_commit(buf, version)?),
        ApiKey::OffsetFetch => cast(groups::decode_offset_fetch(buf)?),
        ApiKey::CreateTopics => cast(admin::decode_create_topics(buf, version)?),
        ApiKey::DeleteTopics => cast(admin::decode_delete_topics(buf)?),
        ApiKey::DescribeConfigs => cast(admin::decode_describe_configs(buf)?),
        ApiKey::DescribeLogDirs => cast(admin::decode_describe_log_dirs(buf)?),
        ApiKey::OffsetForLeaderEpoch => cast(offsets::decode_offset_for_leader_epoch(buf)?),
        ApiKey::CreateAcls => cast(acls::decode_create_acls(buf)?),
        ApiKey::DescribeAcls => cast(acls::decode_describe_acls(buf)?),
        ApiKey::DeleteAcls => cast(acls::decode_delete_acls(buf)?),
        other => Err(anyhow!("no legacy codec for {other:?} v{version}")),
    }
}

/// The body of `response` at `version` when that is a legacy version of its API; `None` when
/// the crate encodes it.
pub fn encode_response(response: &dyn Any, version: i16) -> Option<Result<Bytes>> {
    macro_rules! legacy {
        ($ty:ty, $api:ident, |$r:ident| $encode:expr) => {
            if let Some($r) = response.downcast_ref::<$ty>() {
                return serves(ApiKey::$api, version).then(|| $encode);
            }
        };
    }
    legacy!(ListOffsetsResponse, ListOffsets, |r| {
        offsets::encode_list_offsets_response(r)
    });
    legacy!(OffsetCommitResponse, OffsetCommit, |r| {
        groups::encode_offset_commit_response(r)
    });
    legacy!(OffsetFetchResponse, OffsetFetch, |r| {
        groups::encode_offset_fetch_response(r)
    });
    legacy!(CreateTopicsResponse, CreateTopics, |r| {
        admin::encode_create_topics_response(r, version)
    });
    legacy!(DeleteTopicsResponse, DeleteTopics, |r| {
        admin::encode_delete_topics_response(r)
    });
    legacy!(DescribeConfigsResponse, DescribeConfigs, |r| {
        admin::encode_describe_configs_response(r)
    });
    legacy!(DescribeLogDirsResponse, DescribeLogDirs, |r| {
        admin::encode_describe_log_dirs_response(r)
    });
    legacy!(OffsetForLeaderEpochResponse, OffsetForLeaderEpoch, |r| {
        offsets::encode_offset_for_leader_epoch_response(r, version)
    });
    legacy!(CreateAclsResponse, CreateAcls, |r| {
        acls::encode_create_acls_response(r)
    });
    legacy!(DescribeAclsResponse, DescribeAcls, |r| {
        acls::encode_describe_acls_response(r)
    });
    legacy!(DeleteAclsResponse, DeleteAcls, |r| {
        acls::encode_delete_acls_response(r)
    });
    None
}

/// `value` as `T`: the caller asked for the struct of the API it named.
fn cast<T: 'static, U: 'static>(value: U) -> Result<T> {
    let boxed: Box<dyn Any> = Box::new(value);
    boxed
        .downcast::<T>()
        .map(|b| *b)
        .map_err(|_| anyhow!("a legacy request was asked for as another API's struct"))
}

/// `response` encoded by the crate at `version`, the newer version an old one shares its
/// layout with.
fn encode_as<R: Encodable>(response: &R, version: i16) -> Result<Bytes> {
    let mut out = BytesMut::with_capacity(response.compute_size(version)?);
    response.encode(&mut out, version)?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ListOffsetsRequest, MetadataResponse, OffsetFetchRequest};

    #[test]
    fn legacy_versions_sit_just_below_the_crate_range() {
        for api in ApiKey::iter() {
            if let Some(v) = versions(api) {
                assert_eq!(*v.end() + 1, api.valid_versions().min, "{api:?}");
                assert_eq!(valid_versions(api).min, *v.start());
            }
        }
    }

    #[test]
    fn asking_for_another_api_struct_is_an_error_not_a_panic() {
        let mut buf = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(decode_request::<OffsetFetchRequest, _>(ApiKey::ListOffsets, 0, &mut buf).is_err());
        let mut buf = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(decode_request::<ListOffsetsRequest, _>(ApiKey::ListOffsets, 0, &mut buf).is_ok());
    }

    #[test]
    fn only_legacy_versions_of_legacy_apis_are_encoded_here() {
        assert!(encode_response(&ListOffsetsResponse::default(), 0).is_some());
        assert!(encode_response(&ListOffsetsResponse::default(), 1).is_none());
        assert!(encode_response(&MetadataResponse::default(), 0).is_none());
    }
}
