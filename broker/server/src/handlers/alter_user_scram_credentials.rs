//! AlterUserScramCredentials: sets and deletes users' SCRAM credentials (what
//! `kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=...]'` and AdminClient's
//! alterUserScramCredentials send). The client salts the password; the broker stores the
//! derived keys in the replicated metadata, never a password. Needs ALTER on the cluster.

use std::collections::BTreeMap;

use krait_acl::Operation;
use krait_auth::scram::{MAX_ITERATIONS, ScramCredential, ScramMechanism};
use krait_image::MetadataRecord;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use krait_protocol::kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

type Refusal = (ResponseError, String);

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Each user's changes in request order; the first refusal of a user refuses all of its
    // changes, as Kafka does.
    let mut users: BTreeMap<String, Result<Vec<MetadataRecord>, Refusal>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    let changes = request
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism, None))
        .chain(request.upsertions.iter().map(|u| {
            (
                u.name.to_string(),
                u.mechanism,
                Some((u.iterations, u.salt.to_vec(), u.salted_password.to_vec())),
            )
        }));
    let image = ctx.broker.cluster.image();
    for (user, mechanism, upsert) in changes {
        let duplicate = !seen.insert((user.clone(), mechanism));
        let record = if duplicate {
            Err((
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request".to_string(),
            ))
        } else {
            record(&image, &user, mechanism, upsert)
        };
        let entry = users.entry(user).or_insert_with(|| Ok(Vec::new()));
        match (entry.as_mut(), record) {
            (Ok(records), Ok(r)) => records.push(r),
            (Ok(_), Err(refusal)) => *entry = Err(refusal),
            (Err(_), _) => {}
        }
    }
    let allowed = ctx.authorized_on_cluster(Operation::Alter);
    let mut response = AlterUserScramCredentialsResponse::default();
    for (user, outcome) in users {
        let outcome = match outcome {
            _ if !allowed => Err((
                ResponseError::ClusterAuthorizationFailed,
                "Not authorized to alter SCRAM credentials".to_string(),
            )),
            Ok(records) => commit(ctx, records).await,
            Err(refusal) => Err(refusal),
        };
        let mut result = AlterUserScramCredentialsResult::default();
        result.user = StrBytes::from_string(user);
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(StrBytes::from_string(message));
        }
        response.results.push(result);
    }
    response
}

fn record(
    image: &krait_image::ClusterImage,
    user: &str,
    mechanism: i8,
    upsert: Option<(i32, Vec<u8>, Vec<u8>)>,
) -> Result<MetadataRecord, Refusal> {
    let unacceptable = |m: &str| Err((ResponseError::UnacceptableCredential, m.to_string()));
    if user.is_empty() {
        return unacceptable("Username must not be empty");
    }
    let Some(mechanism) = ScramMechanism::from_kafka_type(mechanism) else {
        return Err((
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".to_string(),
        ));
    };
    let Some((iterations, salt, salted_password)) = upsert else {
        if !image
            .scram
            .get(user)
            .is_some_and(|c| c.contains_key(&mechanism))
        {
            return Err((
                ResponseError::ResourceNotFound,
                "Attempt to delete a user credential that does not exist".to_string(),
            ));
        }
        return Ok(MetadataRecord::DeleteScramCredential {
            user: user.to_string(),
            mechanism,
        });
    };
    let min = mechanism.min_iterations();
    let iterations = match u32::try_from(iterations) {
        Ok(i) if (min..=MAX_ITERATIONS).contains(&i) => i,
        _ => {
            return unacceptable(&format!(
                "Iterations must be between {min} and {MAX_ITERATIONS}"
            ));
        }
    };
    if salt.is_empty() {
        return unacceptable("Salt must not be empty");
    }
    if salted_password.is_empty() {
        return unacceptable("Password must not be empty");
    }
    Ok(MetadataRecord::SetScramCredential {
        user: user.to_string(),
        credential: ScramCredential::from_salted_password(
            mechanism,
            &salted_password,
            &salt,
            iterations,
        ),
    })
}

async fn commit(ctx: &RequestContext<'_>, records: Vec<MetadataRecord>) -> Result<(), Refusal> {
    match ctx.broker.cluster.propose(records).await {
        Ok(results) => match results.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some(e) => Err((ResponseError::ResourceNotFound, e.to_string())),
        },
        Err(e) => Err((ResponseError::RequestTimedOut, e.to_string())),
    }
}
