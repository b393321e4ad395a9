//! ACL requests carry `krait-acl`'s codes, answers read back into bindings, and refusals
//! name the binding.

use std::time::Duration;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::describe_acls_response::AclDescription;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateAclsResponse, DeleteAclsResponse, DescribeAclsResponse,
};
use kafka_protocol::protocol::{Decodable, Request};

use super::*;
use crate::fake_broker::{FakeBroker, answer, api_versions};

fn alice_reads(topic: &str) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: topic.to_string(),
        pattern_type: PatternType::Prefixed,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: Operation::Read,
        permission: Permission::Allow,
    }
}

#[test]
fn a_creation_carries_kafkas_codes() {
    let c = creation(&alice_reads("orders"));
    assert_eq!(
        (
            c.resource_type,
            c.resource_pattern_type,
            c.operation,
            c.permission_type
        ),
        (2, 4, 3, 3)
    );
    assert_eq!(c.resource_name.as_str(), "orders");
    assert_eq!(c.principal.as_str(), "User:alice");
    assert_eq!(c.host.as_str(), "*");
}

#[test]
fn an_open_filter_part_is_sent_as_null_or_any() {
    let filter = AclBindingFilter {
        principal: Some("User:bob".into()),
        ..AclBindingFilter::ANY
    };
    let r = describe_request(&filter);
    assert_eq!(r.resource_type_filter, 1);
    assert_eq!(r.resource_name_filter, None);
    assert_eq!(r.pattern_type_filter, 1);
    assert_eq!(
        r.principal_filter.as_ref().map(|p| p.as_str()),
        Some("User:bob")
    );
    assert_eq!(r.host_filter, None);
    assert_eq!((r.operation, r.permission_type), (1, 1));
    let d = delete_filter(&filter);
    assert_eq!(d.principal_filter, r.principal_filter);
    assert_eq!(d.resource_name_filter, None);
}

#[test]
fn described_resources_read_back_as_one_binding_per_entry() {
    let resource = DescribeAclsResource::default()
        .with_resource_type(2)
        .with_resource_name(strbytes("orders"))
        .with_pattern_type(4)
        .with_acls(vec![
            AclDescription::default()
                .with_principal(strbytes("User:alice"))
                .with_host(strbytes("*"))
                .with_operation(3)
                .with_permission_type(3),
            AclDescription::default()
                .with_principal(strbytes("User:alice"))
                .with_host(strbytes("*"))
                .with_operation(99)
                .with_permission_type(2),
        ]);
    let bindings = bindings_of(&[resource]);
    assert_eq!(bindings[0], alice_reads("orders"));
    assert_eq!(bindings[1].operation, Operation::Unknown);
    assert_eq!(bindings[1].permission, Permission::Deny);
}

/// A broker that answers CreateAcls refusing the second binding, DescribeAcls with one
/// binding, and DeleteAcls with that binding deleted.
fn acl_broker() -> FakeBroker {
    FakeBroker::start(|h, mut body| {
        let v = h.request_api_version;
        match h.request_api_key {
            ApiVersionsRequest::KEY => answer(
                h,
                &api_versions(&[
                    (CreateAclsRequest::KEY, 0, 3),
                    (DescribeAclsRequest::KEY, 0, 3),
                    (DeleteAclsRequest::KEY, 0, 3),
                ]),
                v,
            ),
            CreateAclsRequest::KEY => {
                let request = CreateAclsRequest::decode(&mut body, v).unwrap();
                let results = (0..request.creations.len())
                    .map(|i| match i {
                        0 => AclCreationResult::default(),
                        _ => AclCreationResult::default()
                            .with_error_code(42)
                            .with_error_message(Some(strbytes("Invalid empty resource name"))),
                    })
                    .collect();
                answer(h, &CreateAclsResponse::default().with_results(results), v)
            }
            DescribeAclsRequest::KEY => {
                let c = creation(&alice_reads("orders"));
                let resource = DescribeAclsResource::default()
                    .with_resource_type(c.resource_type)
                    .with_resource_name(c.resource_name)
                    .with_pattern_type(c.resource_pattern_type)
                    .with_acls(vec![
                        AclDescription::default()
                            .with_principal(c.principal)
                            .with_host(c.host)
                            .with_operation(c.operation)
                            .with_permission_type(c.permission_type),
                    ]);
                answer(
                    h,
                    &DescribeAclsResponse::default().with_resources(vec![resource]),
                    v,
                )
            }
            DeleteAclsRequest::KEY => {
                let c = creation(&alice_reads("orders"));
                let matching = DeleteAclsMatchingAcl::default()
                    .with_resource_type(c.resource_type)
                    .with_resource_name(c.resource_name)
                    .with_pattern_type(c.resource_pattern_type)
                    .with_principal(c.principal)
                    .with_host(c.host)
                    .with_operation(c.operation)
                    .with_permission_type(c.permission_type);
                let result = DeleteAclsFilterResult::default().with_matching_acls(vec![matching]);
                answer(
                    h,
                    &DeleteAclsResponse::default().with_filter_results(vec![result]),
                    v,
                )
            }
            other => panic!("unexpected API {other}"),
        }
    })
}

#[test]
fn acls_are_created_listed_and_deleted_at_version_3() {
    let fake = acl_broker();
    let mut admin = Admin::connect(&fake.address, Duration::from_secs(5)).unwrap();
    admin.create_acls(&[alice_reads("orders")]).unwrap();
    assert_eq!(
        admin.describe_acls(&AclBindingFilter::ANY).unwrap(),
        [alice_reads("orders")]
    );
    assert_eq!(
        admin
            .delete_acls(&[AclBindingFilter::from(&alice_reads("orders"))])
            .unwrap(),
        [alice_reads("orders")]
    );
    let versions: Vec<i16> = fake.requests().iter().skip(1).map(|(_, v)| *v).collect();
    assert_eq!(versions, [3, 3, 3]);
}

#[test]
fn a_refused_creation_names_the_binding_and_the_brokers_reason() {
    let fake = acl_broker();
    let mut admin = Admin::connect(&fake.address, Duration::from_secs(5)).unwrap();
    let err = admin
        .create_acls(&[alice_reads("orders"), alice_reads("")])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("CreateAcls of (pattern=ResourcePattern(resourceType=TOPIC, name=,"),
        "{err}"
    );
    assert!(
        err.ends_with("failed: InvalidRequest (42): Invalid empty resource name"),
        "{err}"
    );
}
