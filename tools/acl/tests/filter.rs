//! Specification of DescribeAcls / DeleteAcls filters: Kafka's `ResourcePatternFilter` and
//! `AccessControlEntryFilter` matching, and which filters those requests refuse.

mod common;

use common::*;
use krait_acl::{
    AclBinding, AclBindingFilter, AclError, Acls, Operation, PatternType, Permission, ResourceType,
};

fn prefixed(name: &str) -> AclBinding {
    prefixed_pattern(allow_topic(ALICE, Operation::Read, name))
}

fn by_name(pattern_type: PatternType, name: &str) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: ResourceType::Topic,
        resource_name: Some(name.to_owned()),
        pattern_type,
        ..AclBindingFilter::ANY
    }
}

/// A set with a literal, a literal wildcard, two prefixes and an unrelated literal.
fn sample() -> Acls {
    [
        allow_topic(ALICE, Operation::Read, "orders-eu"),
        allow_topic(ALICE, Operation::Read, "*"),
        prefixed("orders"),
        prefixed("ord"),
        prefixed("pay"),
        allow_topic(ALICE, Operation::Read, "payments"),
    ]
    .into_iter()
    .collect()
}

fn names(acls: &Acls, filter: &AclBindingFilter) -> Vec<(PatternType, String)> {
    acls.matching(filter)
        .map(|b| (b.pattern_type, b.resource_name.clone()))
        .collect()
}

#[test]
fn the_any_filter_matches_every_binding() {
    let acls = sample();
    assert_eq!(acls.matching(&AclBindingFilter::ANY).count(), acls.len());
    assert_eq!(AclBindingFilter::default(), AclBindingFilter::ANY);
}

#[test]
fn match_selects_the_literal_name_the_literal_wildcard_and_every_prefix_of_the_name() {
    let found = names(&sample(), &by_name(PatternType::Match, "orders-eu"));
    assert_eq!(
        found,
        vec![
            (PatternType::Literal, "*".to_owned()),
            (PatternType::Prefixed, "ord".to_owned()),
            (PatternType::Prefixed, "orders".to_owned()),
            (PatternType::Literal, "orders-eu".to_owned()),
        ]
    );
}

#[test]
fn match_without_a_name_matches_every_pattern_of_the_type() {
    let filter = AclBindingFilter {
        resource_type: ResourceType::Topic,
        pattern_type: PatternType::Match,
        ..AclBindingFilter::ANY
    };
    assert_eq!(sample().matching(&filter).count(), sample().len());
}

#[test]
fn any_pattern_type_compares_names_exactly_across_pattern_types() {
    let mut acls = sample();
    acls.insert(allow_topic(ALICE, Operation::Read, "orders"));
    let found = names(&acls, &by_name(PatternType::Any, "orders"));
    assert_eq!(
        found,
        vec![
            (PatternType::Literal, "orders".to_owned()),
            (PatternType::Prefixed, "orders".to_owned())
        ]
    );
}

#[test]
fn a_literal_wildcard_name_finds_only_the_wildcard_acls_unless_matching() {
    let found = names(&sample(), &by_name(PatternType::Literal, "*"));
    assert_eq!(found, vec![(PatternType::Literal, "*".to_owned())]);
}

#[test]
fn an_exact_pattern_type_selects_only_that_pattern_type() {
    let found = names(&sample(), &by_name(PatternType::Prefixed, "orders"));
    assert_eq!(found, vec![(PatternType::Prefixed, "orders".to_owned())]);
    let found = names(&sample(), &by_name(PatternType::Literal, "orders"));
    assert!(found.is_empty());
}

#[test]
fn a_resource_type_filter_selects_only_that_type_and_any_selects_all() {
    let mut acls = sample();
    acls.insert(allow_group(ALICE, Operation::Read, "g"));
    let groups = AclBindingFilter {
        resource_type: ResourceType::Group,
        ..AclBindingFilter::ANY
    };
    assert_eq!(acls.matching(&groups).count(), 1);
    assert_eq!(acls.matching(&AclBindingFilter::ANY).count(), 7);
}

#[test]
fn entry_fields_match_exactly_without_wildcard_expansion() {
    let mut wildcard = allow_topic("User:*", Operation::Read, "orders");
    wildcard.host = "*".to_owned();
    let mut bobs = deny_topic(BOB, Operation::Write, "orders");
    bobs.host = "10.0.0.2".to_owned();
    let acls: Acls = [wildcard.clone(), bobs.clone()].into_iter().collect();

    let alice = AclBindingFilter {
        principal: Some(ALICE.to_owned()),
        ..AclBindingFilter::ANY
    };
    assert_eq!(acls.matching(&alice).count(), 0);
    let star = AclBindingFilter {
        principal: Some("User:*".to_owned()),
        ..AclBindingFilter::ANY
    };
    assert_eq!(acls.matching(&star).collect::<Vec<_>>(), vec![&wildcard]);
    let host = AclBindingFilter {
        host: Some("10.0.0.2".to_owned()),
        ..AclBindingFilter::ANY
    };
    assert_eq!(acls.matching(&host).collect::<Vec<_>>(), vec![&bobs]);
    let deny = AclBindingFilter {
        permission: Permission::Deny,
        ..AclBindingFilter::ANY
    };
    assert_eq!(acls.matching(&deny).collect::<Vec<_>>(), vec![&bobs]);
    let read = AclBindingFilter {
        operation: Operation::Read,
        ..AclBindingFilter::ANY
    };
    assert_eq!(acls.matching(&read).collect::<Vec<_>>(), vec![&wildcard]);
}

#[test]
fn a_filter_made_from_a_binding_matches_only_that_binding() {
    let acls = sample();
    for binding in acls.iter() {
        let filter = AclBindingFilter::from(binding);
        assert_eq!(acls.matching(&filter).collect::<Vec<_>>(), vec![binding]);
    }
}

#[test]
fn filters_with_unknown_pattern_parts_are_refused() {
    for filter in [
        AclBindingFilter {
            resource_type: ResourceType::Unknown,
            ..AclBindingFilter::ANY
        },
        AclBindingFilter {
            pattern_type: PatternType::Unknown,
            ..AclBindingFilter::ANY
        },
    ] {
        assert_eq!(
            filter.validate(),
            Err(AclError::Invalid("Unknown patternFilter.".to_owned()))
        );
    }
}

#[test]
fn filters_with_unknown_entry_parts_are_refused() {
    for filter in [
        AclBindingFilter {
            operation: Operation::Unknown,
            ..AclBindingFilter::ANY
        },
        AclBindingFilter {
            permission: Permission::Unknown,
            ..AclBindingFilter::ANY
        },
    ] {
        assert_eq!(
            filter.validate(),
            Err(AclError::Invalid("Unknown entryFilter.".to_owned()))
        );
    }
}

#[test]
fn any_and_match_filters_are_valid() {
    assert_eq!(AclBindingFilter::ANY.validate(), Ok(()));
    assert_eq!(by_name(PatternType::Match, "orders").validate(), Ok(()));
}

#[test]
fn deleting_what_a_filter_matches_leaves_the_rest() {
    let mut acls = sample();
    let filter = by_name(PatternType::Prefixed, "ord");
    let doomed: Vec<AclBinding> = acls.matching(&filter).cloned().collect();
    for binding in &doomed {
        assert!(acls.remove(binding));
        assert!(!acls.remove(binding), "a second removal finds nothing");
    }
    assert_eq!(acls.len(), sample().len() - 1);
    assert_eq!(acls.matching(&filter).count(), 0);
}
