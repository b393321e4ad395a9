//! Specification of the ACL vocabulary: wire codes and names, what CreateAcls refuses (with
//! Kafka's messages), the set's behaviour, and that everything survives serialization.

mod common;

use common::*;
use krait_acl::{
    AclBinding, AclError, Acls, CLUSTER_RESOURCE_NAME, Operation, PatternType, Permission,
    ResourceType,
};

#[test]
fn wire_codes_are_kafkas() {
    assert_eq!(ResourceType::User.code(), 7);
    assert_eq!(
        ResourceType::from_code(5),
        Some(ResourceType::TransactionalId)
    );
    assert_eq!(PatternType::Prefixed.code(), 4);
    assert_eq!(PatternType::from_code(2), Some(PatternType::Match));
    assert_eq!(Operation::DescribeTokens.code(), 14);
    assert_eq!(Operation::from_code(10), Some(Operation::DescribeConfigs));
    assert_eq!(Permission::Allow.code(), 3);
    assert_eq!(Permission::from_code(2), Some(Permission::Deny));
}

#[test]
fn supported_operations_are_kafkas_per_resource_type_and_never_a_wildcard() {
    let codes = |t: ResourceType| -> Vec<i8> {
        let mut c: Vec<i8> = t.supported_operations().iter().map(|o| o.code()).collect();
        c.sort_unstable();
        c
    };
    // Kafka's AclEntry.supportedOperations, by operation code.
    assert_eq!(codes(ResourceType::Topic), vec![3, 4, 5, 6, 7, 8, 10, 11]);
    assert_eq!(codes(ResourceType::Group), vec![3, 6, 8]);
    assert_eq!(codes(ResourceType::Cluster), vec![5, 7, 8, 9, 10, 11, 12]);
    assert_eq!(codes(ResourceType::TransactionalId), vec![4, 8]);
    assert_eq!(codes(ResourceType::DelegationToken), vec![8]);
    assert_eq!(codes(ResourceType::User), vec![13, 14]);
    for t in ResourceType::VALUES {
        assert!(
            t.supported_operations()
                .iter()
                .all(|o| !matches!(o, Operation::Unknown | Operation::Any | Operation::All)),
            "{t}"
        );
    }
}

#[test]
fn codes_round_trip_and_undefined_codes_are_none() {
    for value in Operation::VALUES {
        assert_eq!(Operation::from_code(value.code()), Some(*value));
    }
    for value in ResourceType::VALUES {
        assert_eq!(ResourceType::from_code(value.code()), Some(*value));
    }
    assert_eq!(ResourceType::from_code(8), None);
    assert_eq!(PatternType::from_code(5), None);
    assert_eq!(Operation::from_code(15), None);
    assert_eq!(Permission::from_code(-1), None);
}

#[test]
fn names_display_as_kafka_prints_them_and_parse_ignoring_case() {
    assert_eq!(ResourceType::Topic.to_string(), "TOPIC");
    assert_eq!(
        ResourceType::TransactionalId.to_string(),
        "TRANSACTIONAL_ID"
    );
    assert_eq!(PatternType::Prefixed.to_string(), "PREFIXED");
    assert_eq!(Operation::DescribeConfigs.to_string(), "DESCRIBE_CONFIGS");
    assert_eq!(Operation::ClusterAction.to_string(), "CLUSTER_ACTION");
    assert_eq!(Permission::Allow.to_string(), "ALLOW");
    assert_eq!(
        Operation::from_name("describe_configs"),
        Some(Operation::DescribeConfigs)
    );
    assert_eq!(
        PatternType::from_name("Literal"),
        Some(PatternType::Literal)
    );
    assert_eq!(ResourceType::from_name("topics"), None);
}

fn valid() -> AclBinding {
    allow_topic(ALICE, Operation::Read, "orders")
}

fn refusal(binding: AclBinding) -> String {
    match binding.validate() {
        Err(AclError::Invalid(message)) => message,
        Ok(()) => panic!("{binding} was accepted"),
    }
}

#[test]
fn a_well_formed_binding_is_valid() {
    assert_eq!(valid().validate(), Ok(()));
    let prefixed = AclBinding {
        pattern_type: PatternType::Prefixed,
        permission: Permission::Deny,
        ..valid()
    };
    assert_eq!(prefixed.validate(), Ok(()));
}

#[test]
fn a_cluster_binding_must_be_named_kafka_cluster() {
    let cluster = AclBinding {
        resource_type: ResourceType::Cluster,
        ..valid()
    };
    assert_eq!(
        refusal(cluster.clone()),
        "The only valid name for the CLUSTER resource is kafka-cluster"
    );
    let named = AclBinding {
        resource_name: CLUSTER_RESOURCE_NAME.to_owned(),
        ..cluster
    };
    assert_eq!(named.validate(), Ok(()));
}

#[test]
fn an_empty_resource_name_is_refused() {
    assert_eq!(
        refusal(AclBinding {
            resource_name: String::new(),
            ..valid()
        }),
        "Invalid empty resource name"
    );
}

#[test]
fn unknown_or_any_resource_types_are_refused() {
    assert_eq!(
        refusal(AclBinding {
            resource_type: ResourceType::Unknown,
            ..valid()
        }),
        "Invalid resourceType UNKNOWN"
    );
    assert_eq!(
        refusal(AclBinding {
            resource_type: ResourceType::Any,
            ..valid()
        }),
        "Invalid resourceType ANY"
    );
}

#[test]
fn only_literal_and_prefixed_patterns_are_stored() {
    for (pattern_type, message) in [
        (PatternType::Unknown, "Invalid patternType UNKNOWN"),
        (PatternType::Any, "Invalid patternType ANY"),
        (PatternType::Match, "Invalid patternType MATCH"),
    ] {
        assert_eq!(
            refusal(AclBinding {
                pattern_type,
                ..valid()
            }),
            message
        );
    }
}

#[test]
fn unknown_or_any_operations_are_refused_but_all_is_stored() {
    assert_eq!(
        refusal(AclBinding {
            operation: Operation::Unknown,
            ..valid()
        }),
        "Invalid operation UNKNOWN"
    );
    assert_eq!(
        refusal(AclBinding {
            operation: Operation::Any,
            ..valid()
        }),
        "Invalid operation ANY"
    );
    assert_eq!(
        AclBinding {
            operation: Operation::All,
            ..valid()
        }
        .validate(),
        Ok(())
    );
}

#[test]
fn only_allow_and_deny_permissions_are_stored() {
    assert_eq!(
        refusal(AclBinding {
            permission: Permission::Unknown,
            ..valid()
        }),
        "Invalid permissionType UNKNOWN"
    );
    assert_eq!(
        refusal(AclBinding {
            permission: Permission::Any,
            ..valid()
        }),
        "Invalid permissionType ANY"
    );
}

#[test]
fn a_principal_without_a_type_is_refused() {
    assert_eq!(
        refusal(AclBinding {
            principal: "alice".to_owned(),
            ..valid()
        }),
        "expected a string in format principalType:principalName but got alice"
    );
    assert_eq!(
        refusal(AclBinding {
            principal: String::new(),
            ..valid()
        }),
        "expected a string in format principalType:principalName but got "
    );
    assert_eq!(
        AclBinding {
            principal: "User:*".to_owned(),
            ..valid()
        }
        .validate(),
        Ok(())
    );
}

#[test]
fn the_cluster_name_check_comes_first_as_in_kafkas_broker() {
    let binding = AclBinding {
        resource_type: ResourceType::Cluster,
        operation: Operation::Any,
        principal: "nobody".to_owned(),
        ..valid()
    };
    assert_eq!(
        refusal(binding),
        "The only valid name for the CLUSTER resource is kafka-cluster"
    );
}

#[test]
fn the_error_message_is_the_display_text() {
    let error = AclBinding {
        resource_name: String::new(),
        ..valid()
    }
    .validate()
    .unwrap_err();
    assert_eq!(error.message(), error.to_string());
}

#[test]
fn inserting_a_present_binding_reports_false_and_keeps_one_copy() {
    let mut acls = Acls::new();
    assert!(acls.insert(valid()));
    assert!(!acls.insert(valid()));
    assert_eq!(acls.len(), 1);
    assert!(acls.contains(&valid()));
    assert!(acls.remove(&valid()));
    assert!(acls.is_empty());
}

#[test]
fn iteration_order_does_not_depend_on_insertion_order() {
    let bindings = [
        deny_topic(BOB, Operation::Write, "b"),
        allow_topic(ALICE, Operation::Read, "a"),
        prefixed_pattern(allow_group(ALICE, Operation::Read, "g")),
    ];
    let forward: Acls = bindings.iter().cloned().collect();
    let backward: Acls = bindings.iter().rev().cloned().collect();
    assert_eq!(forward, backward);
    assert!(forward.iter().eq(backward.iter()));
}

#[test]
fn enums_bindings_and_sets_survive_a_serde_round_trip() {
    for operation in Operation::VALUES {
        assert_eq!(round_trip(operation), *operation);
    }
    for resource_type in ResourceType::VALUES {
        assert_eq!(round_trip(resource_type), *resource_type);
    }
    let binding = AclBinding {
        host: "10.0.0.1".to_owned(),
        ..valid()
    };
    assert_eq!(round_trip(&binding), binding);
    let acls: Acls = [binding, deny_topic(BOB, Operation::All, "*")]
        .into_iter()
        .collect();
    assert_eq!(round_trip(&acls), acls);
}

#[test]
fn a_set_serializes_as_a_plain_sequence_of_bindings() {
    let acls: Acls = [valid()].into_iter().collect();
    let tree = serde_json::to_value(&acls).expect("serialize");
    assert!(
        tree.as_array().is_some_and(|items| items.len() == 1),
        "{tree}"
    );
}
