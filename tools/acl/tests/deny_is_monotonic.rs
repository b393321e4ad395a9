//! Properties of the decision over random ACL sets drawn from a small vocabulary (so that
//! names, prefixes, principals and hosts collide often).

mod common;

use krait_acl::{
    AclBinding, AclBindingFilter, Acls, Action, AuthorizerConfig, Decision, Operation, PatternType,
    Permission, ResourceType,
};
use proptest::prelude::*;

const NAMES: [&str; 6] = ["a", "ab", "abc", "b", "*", "abd"];
const PRINCIPALS: [&str; 3] = ["User:alice", "User:bob", "User:*"];
const HOSTS: [&str; 3] = ["*", "10.0.0.1", "10.0.0.2"];
const OPERATIONS: [Operation; 8] = [
    Operation::All,
    Operation::Read,
    Operation::Write,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];
const TYPES: [ResourceType; 2] = [ResourceType::Topic, ResourceType::Group];

fn binding_with(
    permission: impl Strategy<Value = Permission>,
) -> impl Strategy<Value = AclBinding> {
    (
        prop::sample::select(&TYPES[..]),
        prop::sample::select(&NAMES[..]),
        prop::sample::select(&[PatternType::Literal, PatternType::Prefixed][..]),
        prop::sample::select(&PRINCIPALS[..]),
        prop::sample::select(&HOSTS[..]),
        prop::sample::select(&OPERATIONS[..]),
        permission,
    )
        .prop_map(
            |(resource_type, name, pattern_type, principal, host, operation, permission)| {
                AclBinding {
                    resource_type,
                    resource_name: name.to_owned(),
                    pattern_type,
                    principal: principal.to_owned(),
                    host: host.to_owned(),
                    operation,
                    permission,
                }
            },
        )
}

fn binding() -> impl Strategy<Value = AclBinding> {
    binding_with(prop::sample::select(
        &[Permission::Allow, Permission::Deny][..],
    ))
}

fn acls() -> impl Strategy<Value = Acls> {
    prop::collection::vec(binding(), 0..12).prop_map(|bindings| bindings.into_iter().collect())
}

/// An action as owned parts: (principal, host, operation, resource type, name).
type Question = (
    &'static str,
    &'static str,
    Operation,
    ResourceType,
    &'static str,
);

fn question() -> impl Strategy<Value = Question> {
    (
        prop::sample::select(&PRINCIPALS[..2]),
        prop::sample::select(&HOSTS[1..]),
        prop::sample::select(&OPERATIONS[1..]),
        prop::sample::select(&TYPES[..]),
        prop::sample::select(&NAMES[..]),
    )
}

fn action(q: &Question) -> Action<'static> {
    Action {
        principal: q.0,
        host: q.1,
        operation: q.2,
        resource_type: q.3,
        resource_name: q.4,
    }
}

fn config() -> impl Strategy<Value = AuthorizerConfig> {
    (any::<bool>(), any::<bool>()).prop_map(|(allow_everyone, bob_is_super)| AuthorizerConfig {
        super_users: if bob_is_super {
            AuthorizerConfig::parse_super_users("User:bob")
        } else {
            Default::default()
        },
        allow_everyone_if_no_acl_found: allow_everyone,
    })
}

proptest! {
    #[test]
    fn adding_a_deny_never_turns_a_denied_action_into_an_allowed_one(
        acls in acls(),
        deny in binding_with(Just(Permission::Deny)),
        q in question(),
        config in config(),
    ) {
        let before = acls.authorize(&config, &action(&q));
        let mut after = acls.clone();
        after.insert(deny);
        prop_assert!(before || !after.authorize(&config, &action(&q)));
    }

    #[test]
    fn a_deny_for_exactly_the_action_denies_it_unless_the_principal_is_a_super_user(
        acls in acls(),
        q in question(),
        config in config(),
    ) {
        let a = action(&q);
        let mut acls = acls;
        acls.insert(AclBinding {
            resource_type: a.resource_type,
            resource_name: a.resource_name.to_owned(),
            pattern_type: PatternType::Literal,
            principal: a.principal.to_owned(),
            host: "*".to_owned(),
            operation: a.operation,
            permission: Permission::Deny,
        });
        let super_user = config.super_users.contains(a.principal);
        prop_assert_eq!(acls.authorize(&config, &a), super_user);
    }

    #[test]
    fn the_no_acl_default_applies_exactly_when_a_match_filter_finds_nothing(
        acls in acls(),
        q in question(),
    ) {
        let a = action(&q);
        let filter = AclBindingFilter {
            resource_type: a.resource_type,
            resource_name: Some(a.resource_name.to_owned()),
            pattern_type: PatternType::Match,
            ..AclBindingFilter::ANY
        };
        let none_found = acls.matching(&filter).next().is_none();
        let decision = acls.decide(&AuthorizerConfig::default(), &a);
        prop_assert_eq!(matches!(decision, Decision::NoAclFound { .. }), none_found);
    }
}
