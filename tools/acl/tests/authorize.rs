//! Specification of the StandardAuthorizer decision: which ACLs apply to an action and
//! how ALLOW, DENY, implied operations, super users and the no-ACL default combine.

mod common;

use common::*;
use krait_acl::{
    Acls, Action, AuthorizerConfig, Decision, Operation, PatternType, Permission, ResourceType,
};

fn acls(bindings: impl IntoIterator<Item = krait_acl::AclBinding>) -> Acls {
    bindings.into_iter().collect()
}

#[test]
fn an_allow_for_the_principal_operation_and_topic_allows() {
    let acls = acls([allow_topic(ALICE, Operation::Read, "orders")]);
    assert!(acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn with_no_acls_and_the_default_off_everything_is_denied() {
    let acls = Acls::new();
    let decision = acls.decide(&strict(), &on_topic(ALICE, Operation::Read, "orders"));
    assert_eq!(decision, Decision::NoAclFound { allowed: false });
    assert!(!decision.is_allowed());
}

#[test]
fn with_no_acls_and_allow_everyone_if_no_acl_found_everything_is_allowed() {
    let acls = Acls::new();
    let decision = acls.decide(&permissive(), &on_topic(ALICE, Operation::Write, "orders"));
    assert_eq!(decision, Decision::NoAclFound { allowed: true });
}

#[test]
fn allow_everyone_does_not_apply_when_another_principal_has_an_acl_on_the_resource() {
    let acls = acls([allow_topic(BOB, Operation::Read, "orders")]);
    let decision = acls.decide(&permissive(), &on_topic(ALICE, Operation::Read, "orders"));
    assert_eq!(decision, Decision::NoMatchingAcl);
}

#[test]
fn allow_everyone_does_not_apply_when_an_acl_for_another_operation_exists() {
    let acls = acls([allow_topic(ALICE, Operation::Write, "orders")]);
    assert!(!acls.authorize(&permissive(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn allow_everyone_does_not_apply_when_a_prefixed_or_wildcard_acl_covers_the_resource() {
    let prefixed = prefixed_pattern(allow_topic(BOB, Operation::Read, "ord"));
    let wildcard = allow_topic(BOB, Operation::Read, "*");
    for binding in [prefixed, wildcard] {
        let acls = acls([binding]);
        assert!(!acls.authorize(&permissive(), &on_topic(ALICE, Operation::Read, "orders")));
    }
}

#[test]
fn allow_everyone_applies_when_acls_exist_only_on_other_resources() {
    let acls = acls([
        allow_topic(BOB, Operation::Read, "payments"),
        // A literal ACL whose name is a prefix of the resource does not cover it.
        allow_topic(BOB, Operation::Read, "ord"),
        allow_group(BOB, Operation::Read, "orders"),
    ]);
    assert!(acls.authorize(&permissive(), &on_topic(ALICE, Operation::Read, "orders")));
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn deny_wins_over_allow_for_the_same_principal() {
    let deny = deny_topic(ALICE, Operation::Read, "orders");
    let acls = acls([allow_topic(ALICE, Operation::Read, "orders"), deny.clone()]);
    let decision = acls.decide(&strict(), &on_topic(ALICE, Operation::Read, "orders"));
    assert_eq!(decision, Decision::Denied(&deny));
}

#[test]
fn deny_of_all_wins_over_allow_of_the_operation() {
    let acls = acls([
        allow_topic(ALICE, Operation::Write, "orders"),
        deny_topic(ALICE, Operation::All, "orders"),
    ]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Write, "orders")));
}

#[test]
fn deny_for_the_wildcard_principal_wins_over_allow_for_the_named_principal() {
    let acls = acls([
        allow_topic(ALICE, Operation::Read, "orders"),
        deny_topic("User:*", Operation::Read, "orders"),
    ]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn deny_on_a_prefixed_pattern_denies_literal_resources_under_it() {
    let acls = acls([
        allow_topic(ALICE, Operation::Read, "orders-eu"),
        prefixed_pattern(deny_topic(ALICE, Operation::Read, "orders")),
    ]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders-eu")));
}

#[test]
fn deny_on_the_wildcard_resource_denies_every_resource_of_the_type() {
    let acls = acls([
        allow_topic(ALICE, Operation::Read, "orders"),
        deny_topic(ALICE, Operation::Read, "*"),
    ]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn deny_of_another_operation_does_not_deny() {
    let acls = acls([
        allow_topic(ALICE, Operation::Read, "orders"),
        deny_topic(ALICE, Operation::Write, "orders"),
    ]);
    assert!(acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn allow_of_all_allows_every_operation() {
    let acls = acls([allow_topic(ALICE, Operation::All, "orders")]);
    for operation in [
        Operation::Read,
        Operation::Write,
        Operation::Delete,
        Operation::AlterConfigs,
    ] {
        assert!(
            acls.authorize(&strict(), &on_topic(ALICE, operation, "orders")),
            "{operation}"
        );
    }
}

#[test]
fn a_prefixed_allow_covers_names_that_start_with_the_prefix_only() {
    let acls = acls([prefixed_pattern(allow_topic(
        ALICE,
        Operation::Read,
        "orders",
    ))]);
    for (topic, allowed) in [
        ("orders", true),
        ("orders-eu", true),
        ("order", false),
        ("xorders", false),
    ] {
        assert_eq!(
            acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, topic)),
            allowed,
            "{topic}"
        );
    }
}

#[test]
fn a_literal_allow_covers_only_the_exact_name() {
    let acls = acls([allow_topic(ALICE, Operation::Read, "orders")]);
    for (topic, allowed) in [("orders", true), ("orders-eu", false), ("order", false)] {
        assert_eq!(
            acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, topic)),
            allowed,
            "{topic}"
        );
    }
}

#[test]
fn a_literal_wildcard_allow_covers_every_name_of_its_type_only() {
    let acls = acls([allow_topic(ALICE, Operation::Read, "*")]);
    assert!(acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "anything")));
    let group = Action {
        resource_type: ResourceType::Group,
        ..on_topic(ALICE, Operation::Read, "anything")
    };
    assert!(!acls.authorize(&strict(), &group));
}

#[test]
fn a_prefixed_star_is_a_prefix_not_a_wildcard() {
    let acls = acls([prefixed_pattern(allow_topic(ALICE, Operation::Read, "*"))]);
    assert!(acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "*starred")));
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn an_acl_on_another_resource_type_with_the_same_name_does_not_apply() {
    let acls = acls([allow_group(ALICE, Operation::Read, "orders")]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn the_wildcard_principal_user_star_matches_every_principal() {
    let acls = acls([allow_topic("User:*", Operation::Read, "orders")]);
    assert!(acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
    assert!(acls.authorize(&strict(), &on_topic(BOB, Operation::Read, "orders")));
}

#[test]
fn only_user_star_is_a_wildcard_principal() {
    let acls = acls([allow_topic("Group:*", Operation::Read, "orders")]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn an_acl_for_another_principal_does_not_apply() {
    let acls = acls([allow_topic(BOB, Operation::Read, "orders")]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn an_acl_for_another_host_does_not_apply() {
    let mut binding = allow_topic(ALICE, Operation::Read, "orders");
    binding.host = "10.9.9.9".to_owned();
    let acls = acls([binding]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn an_acl_for_the_clients_host_or_any_host_applies() {
    let mut binding = allow_topic(ALICE, Operation::Read, "orders");
    binding.host = ALICE_HOST.to_owned();
    let exact = acls([binding]);
    let any = acls([allow_topic(ALICE, Operation::Read, "orders")]);
    for acls in [exact, any] {
        assert!(acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
    }
}

#[test]
fn a_deny_for_another_host_does_not_deny() {
    let mut deny = deny_topic(ALICE, Operation::Read, "orders");
    deny.host = "10.9.9.9".to_owned();
    let acls = acls([allow_topic(ALICE, Operation::Read, "orders"), deny]);
    assert!(acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn allow_of_read_write_delete_or_alter_implies_describe() {
    for operation in [
        Operation::Read,
        Operation::Write,
        Operation::Delete,
        Operation::Alter,
    ] {
        let acls = acls([allow_topic(ALICE, operation, "orders")]);
        assert!(
            acls.authorize(&strict(), &on_topic(ALICE, Operation::Describe, "orders")),
            "{operation}"
        );
    }
}

#[test]
fn no_other_operation_implies_describe() {
    for operation in [
        Operation::Create,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ] {
        let acls = acls([allow_topic(ALICE, operation, "orders")]);
        assert!(
            !acls.authorize(&strict(), &on_topic(ALICE, Operation::Describe, "orders")),
            "{operation}"
        );
    }
}

#[test]
fn allow_of_alter_configs_implies_describe_configs_and_nothing_else_does() {
    for operation in Operation::VALUES.iter().copied() {
        if matches!(operation, Operation::Unknown | Operation::Any) {
            continue;
        }
        let acls = acls([allow_topic(ALICE, operation, "orders")]);
        let expected = matches!(
            operation,
            Operation::DescribeConfigs | Operation::AlterConfigs | Operation::All
        );
        let asked = on_topic(ALICE, Operation::DescribeConfigs, "orders");
        assert_eq!(acls.authorize(&strict(), &asked), expected, "{operation}");
    }
}

#[test]
fn implication_is_one_way_describe_does_not_imply_read() {
    let acls = acls([allow_topic(ALICE, Operation::Describe, "orders")]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
    let acls = self::acls([allow_topic(ALICE, Operation::DescribeConfigs, "orders")]);
    assert!(!acls.authorize(
        &strict(),
        &on_topic(ALICE, Operation::AlterConfigs, "orders")
    ));
}

#[test]
fn a_deny_of_read_does_not_deny_describe() {
    let acls = acls([
        allow_topic(ALICE, Operation::Describe, "orders"),
        deny_topic(ALICE, Operation::Read, "orders"),
    ]);
    assert!(acls.authorize(&strict(), &on_topic(ALICE, Operation::Describe, "orders")));
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn a_deny_of_describe_wins_over_an_allow_of_read_for_describe() {
    let acls = acls([
        allow_topic(ALICE, Operation::Read, "orders"),
        deny_topic(ALICE, Operation::Describe, "orders"),
    ]);
    assert!(!acls.authorize(&strict(), &on_topic(ALICE, Operation::Describe, "orders")));
    assert!(acls.authorize(&strict(), &on_topic(ALICE, Operation::Read, "orders")));
}

#[test]
fn a_super_user_is_allowed_even_against_a_deny() {
    let config = AuthorizerConfig {
        super_users: AuthorizerConfig::parse_super_users("User:admin"),
        ..strict()
    };
    let acls = acls([deny_topic("User:admin", Operation::All, "orders")]);
    let decision = acls.decide(&config, &on_topic("User:admin", Operation::Write, "orders"));
    assert_eq!(decision, Decision::SuperUser);
    assert!(!acls.authorize(&config, &on_topic(ALICE, Operation::Write, "orders")));
}

#[test]
fn super_users_are_compared_with_type_and_name() {
    let config = AuthorizerConfig {
        super_users: AuthorizerConfig::parse_super_users("User:admin"),
        ..strict()
    };
    let acls = Acls::new();
    assert!(!acls.authorize(&config, &on_topic("Group:admin", Operation::Read, "orders")));
    assert!(!acls.authorize(&config, &on_topic("User:Admin", Operation::Read, "orders")));
}

#[test]
fn super_users_parse_from_a_semicolon_separated_trimmed_list() {
    let users = AuthorizerConfig::parse_super_users(" User:a ;User:b;; ;User:c");
    let expected: Vec<&str> = vec!["User:a", "User:b", "User:c"];
    assert_eq!(
        users.iter().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    assert!(AuthorizerConfig::parse_super_users("").is_empty());
}

#[test]
fn a_super_user_entry_without_a_type_is_refused_when_parsed_strictly() {
    let error = AuthorizerConfig::try_parse_super_users("User:a;admin").unwrap_err();
    assert_eq!(
        error.to_string(),
        "expected a string in format principalType:principalName but got admin"
    );
    assert!(AuthorizerConfig::try_parse_super_users("User:a;User:b").is_ok());
}

#[test]
fn the_cluster_resource_is_authorized_by_name_kafka_cluster() {
    let acls = acls([acl(
        Permission::Allow,
        ALICE,
        Operation::ClusterAction,
        ResourceType::Cluster,
        PatternType::Literal,
        "kafka-cluster",
    )]);
    let action = Action {
        principal: ALICE,
        host: ALICE_HOST,
        operation: Operation::ClusterAction,
        resource_type: ResourceType::Cluster,
        resource_name: "kafka-cluster",
    };
    assert!(acls.authorize(&strict(), &action));
}

#[test]
fn the_decision_names_the_allow_that_granted_it() {
    let allow = allow_topic(ALICE, Operation::Read, "orders");
    let acls = acls([allow.clone(), allow_topic(BOB, Operation::Write, "orders")]);
    let decision = acls.decide(&strict(), &on_topic(ALICE, Operation::Read, "orders"));
    assert_eq!(decision, Decision::Allowed(&allow));
}
