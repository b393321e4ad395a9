//! Served APIs and version ranges, and the ApiVersions answer built from them.
//!
//! A client picks, for every API, the highest version both sides support, so the list a broker
//! advertises is a promise. The list itself belongs to the server, where each handler declares
//! the versions it serves next to its code; this module only gives it a type and an encoding.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

/// One implemented API and the inclusive range of versions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiSupport {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

impl ApiSupport {
    /// `key` served at every version in `versions`.
    pub const fn new(key: ApiKey, versions: std::ops::RangeInclusive<i16>) -> Self {
        Self {
            key,
            min: *versions.start(),
            max: *versions.end(),
        }
    }
}

/// Whether `version` of `api_key` is among `served`; the entry when it is.
pub fn served_version(served: &[ApiSupport], api_key: i16, version: i16) -> Option<ApiSupport> {
    served
        .iter()
        .copied()
        .find(|a| a.key as i16 == api_key && (a.min..=a.max).contains(&version))
}

/// The ApiVersions response body listing every API in `served`, with `error_code` set.
pub fn api_versions_response(served: &[ApiSupport], error_code: i16) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.error_code = error_code;
    response.api_keys = served
        .iter()
        .map(|a| {
            let mut v = ApiVersion::default();
            v.api_key = a.key as i16;
            v.min_version = a.min;
            v.max_version = a.max;
            v
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVED: &[ApiSupport] = &[
        ApiSupport::new(ApiKey::Produce, 3..=12),
        ApiSupport::new(ApiKey::ApiVersions, 0..=3),
    ];

    #[test]
    fn unknown_and_out_of_range_versions_are_not_served() {
        assert!(served_version(SERVED, ApiKey::Produce as i16, 9).is_some());
        assert!(served_version(SERVED, ApiKey::Produce as i16, 2).is_none());
        assert!(served_version(SERVED, ApiKey::Produce as i16, 13).is_none());
        assert!(served_version(SERVED, ApiKey::EndTxn as i16, 0).is_none());
        assert!(served_version(SERVED, -1, 0).is_none());
        assert!(served_version(SERVED, 999, 0).is_none());
    }

    #[test]
    fn api_versions_response_lists_each_served_api_with_its_range() {
        let r = api_versions_response(SERVED, 35);
        assert_eq!(r.error_code, 35);
        let listed: Vec<(i16, i16, i16)> = r
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(listed, vec![(0, 3, 12), (18, 0, 3)]);
    }
}
