//! DescribeUserScramCredentials: which SCRAM mechanisms (and iteration counts) each user has,
//! never the keys. Needs DESCRIBE on the cluster.

use krait_acl::Operation;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use krait_protocol::kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let mut response = DescribeUserScramCredentialsResponse::default();
    if !ctx.authorized_on_cluster(Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(StrBytes::from_static_str(
            "Not authorized to describe SCRAM credentials",
        ));
        return response;
    }
    let image = ctx.broker.cluster.image();
    let asked: Vec<String> = match request.users {
        Some(users) if !users.is_empty() => users.iter().map(|u| u.name.to_string()).collect(),
        _ => image.scram.keys().cloned().collect(),
    };
    for (i, user) in asked.iter().enumerate() {
        let mut result = DescribeUserScramCredentialsResult::default();
        result.user = StrBytes::from_string(user.clone());
        if asked[..i].contains(user) {
            result.error_code = ResponseError::DuplicateResource.code();
            result.error_message = Some(StrBytes::from_string(format!(
                "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
            )));
        } else {
            match image.scram.get(user) {
                Some(credentials) => {
                    result.credential_infos = credentials
                        .values()
                        .map(|c| {
                            let mut info = CredentialInfo::default();
                            info.mechanism = c.mechanism.kafka_type();
                            info.iterations = c.iterations as i32;
                            info
                        })
                        .collect();
                }
                None => {
                    result.error_code = ResponseError::ResourceNotFound.code();
                    result.error_message = Some(StrBytes::from_string(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    )));
                }
            }
        }
        response.results.push(result);
    }
    response
}
