//! The group state machine, transition by transition.

use super::*;

const S: Settings = Settings {
    initial_rebalance_delay_ms: 0,
    min_session_timeout_ms: 6_000,
    max_session_timeout_ms: 1_800_000,
};

fn req(member_id: &str, fresh: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: Bytes::from_static(b"meta"),
        }],
        require_known_member_id: true,
        fresh_member_id: fresh.into(),
    }
}

fn static_req(instance: &str, fresh: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.into()),
        ..req("", fresh)
    }
}

fn sync(member: &str, generation: i32, assignments: &[(&str, &'static [u8])]) -> SyncRequest {
    SyncRequest {
        member_id: member.into(),
        generation_id: generation,
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from_static(a)))
            .collect(),
    }
}

fn joined(fx: &[Effect]) -> Vec<(String, JoinResponse)> {
    fx.iter()
        .filter_map(|e| {
            if let Effect::Join(m, r) = e {
                Some((m.clone(), r.clone()))
            } else {
                None
            }
        })
        .collect()
}

fn synced(fx: &[Effect]) -> Vec<(String, SyncResponse)> {
    fx.iter()
        .filter_map(|e| {
            if let Effect::Sync(m, r) = e {
                Some((m.clone(), r.clone()))
            } else {
                None
            }
        })
        .collect()
}

/// A stable group of the given members (ids "a", "b", ...), leader "a", assigned.
fn stable(ids: &[&str]) -> Group {
    let mut g = Group::new("g");
    for id in ids {
        let (r, _) = g.join(
            0,
            &JoinRequest {
                require_known_member_id: false,
                ..req("", id)
            },
            &S,
        );
        assert_eq!(
            r,
            Reply::Park {
                member_id: id.to_string()
            }
        );
    }
    // With no initial delay the first join completes at once and each later one restarts the
    // rebalance; the earlier members rejoin to complete it.
    for id in ids {
        if g.state == GroupState::PreparingRebalance {
            let _ = g.join(0, &req(id, ""), &S);
        }
    }
    assert_eq!(g.state, GroupState::CompletingRebalance, "{g:?}");
    assert_eq!(g.leader.as_deref(), Some(ids[0]));
    let assignments: Vec<(&str, &'static [u8])> = ids
        .iter()
        .map(|id| (*id, b"assigned" as &'static [u8]))
        .collect();
    let generation = g.generation_id;
    let _ = g.sync(0, &sync(ids[0], generation, &assignments));
    assert_eq!(g.state, GroupState::Stable);
    g
}

#[test]
fn v4_join_without_member_id_gets_member_id_required_then_joins() {
    let mut g = Group::new("g");
    let (r, fx) = g.join(0, &req("", "m-1"), &S);
    let Reply::Now(resp) = r else { panic!("{r:?}") };
    assert_eq!(
        (resp.error, resp.member_id.as_str()),
        (Some(GroupError::MemberIdRequired), "m-1")
    );
    assert!(fx.is_empty() && g.members.is_empty() && g.state == GroupState::Empty);
    let (r, fx) = g.join(0, &req("m-1", ""), &S);
    assert_eq!(
        r,
        Reply::Park {
            member_id: "m-1".into()
        }
    );
    let answers = joined(&fx);
    assert_eq!(answers.len(), 1);
    let resp = &answers[0].1;
    assert_eq!(
        (
            resp.generation_id,
            resp.leader.as_str(),
            resp.protocol_name.as_deref()
        ),
        (1, "m-1", Some("range"))
    );
    assert_eq!(
        resp.members.len(),
        1,
        "the leader gets every member's metadata"
    );
    assert_eq!(g.state, GroupState::CompletingRebalance);
}

#[test]
fn unknown_member_id_is_refused() {
    let mut g = stable(&["a"]);
    let (r, _) = g.join(0, &req("nobody", ""), &S);
    assert_eq!(
        r,
        Reply::Now(JoinResponse::error(GroupError::UnknownMemberId, "nobody"))
    );
    assert_eq!(
        g.heartbeat(0, "nobody", 1, None),
        Some(GroupError::UnknownMemberId)
    );
}

#[test]
fn first_rebalance_waits_for_the_initial_delay() {
    let s = Settings {
        initial_rebalance_delay_ms: 3_000,
        ..S
    };
    let mut g = Group::new("g");
    let (_, fx) = g.join(
        0,
        &JoinRequest {
            require_known_member_id: false,
            ..req("", "a")
        },
        &s,
    );
    assert!(joined(&fx).is_empty(), "held for the delay");
    let (_, fx) = g.join(
        1_000,
        &JoinRequest {
            require_known_member_id: false,
            ..req("", "b")
        },
        &s,
    );
    assert!(joined(&fx).is_empty());
    assert!(joined(&g.tick(2_999, &s)).is_empty());
    let fx = g.tick(3_000, &s);
    let answers = joined(&fx);
    assert_eq!(answers.len(), 2);
    let leader = answers.iter().find(|(m, _)| m == "a").unwrap();
    let follower = answers.iter().find(|(m, _)| m == "b").unwrap();
    assert_eq!((leader.1.members.len(), follower.1.members.len()), (2, 0));
    assert_eq!(g.generation_id, 1);
}

#[test]
fn leader_sync_makes_the_group_stable_and_answers_parked_followers() {
    let s = Settings {
        initial_rebalance_delay_ms: 10,
        ..S
    };
    let mut g = Group::new("g");
    for id in ["a", "b"] {
        let _ = g.join(
            0,
            &JoinRequest {
                require_known_member_id: false,
                ..req("", id)
            },
            &s,
        );
    }
    let _ = g.tick(10, &s);
    let (r, fx) = g.sync(11, &sync("b", 1, &[]));
    assert_eq!(
        (r, fx.is_empty()),
        (
            Reply::Park {
                member_id: "b".into()
            },
            true
        )
    );
    let (r, fx) = g.sync(12, &sync("a", 1, &[("a", b"A"), ("b", b"B")]));
    assert_eq!(
        r,
        Reply::Park {
            member_id: "a".into()
        }
    );
    let mut answers = synced(&fx);
    answers.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        answers
            .iter()
            .map(|(m, r)| (m.as_str(), r.assignment.clone()))
            .collect::<Vec<_>>(),
        vec![
            ("a", Bytes::from_static(b"A")),
            ("b", Bytes::from_static(b"B"))
        ]
    );
    assert_eq!(g.state, GroupState::Stable);
    assert!(fx.contains(&Effect::Changed));
    let (r, _) = g.sync(13, &sync("b", 1, &[]));
    assert_eq!(
        r,
        Reply::Now(SyncResponse {
            assignment: Bytes::from_static(b"B"),
            ..g.sync_response("b")
        })
    );
}

#[test]
fn sync_and_heartbeat_with_an_old_generation_are_illegal() {
    let mut g = stable(&["a", "b"]);
    let generation = g.generation_id;
    assert_eq!(
        g.heartbeat(0, "a", generation - 1, None),
        Some(GroupError::IllegalGeneration)
    );
    let (r, _) = g.sync(0, &sync("a", generation + 1, &[]));
    assert_eq!(
        r,
        Reply::Now(SyncResponse::error(GroupError::IllegalGeneration))
    );
    assert_eq!(g.heartbeat(0, "a", generation, None), None);
}

#[test]
fn a_new_member_triggers_a_rebalance_that_existing_members_learn_from_heartbeats() {
    let mut g = stable(&["a"]);
    let generation = g.generation_id;
    let (r, _) = g.join(
        100,
        &JoinRequest {
            require_known_member_id: false,
            ..req("", "b")
        },
        &S,
    );
    assert_eq!(
        r,
        Reply::Park {
            member_id: "b".into()
        }
    );
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(100, "a", generation, None),
        Some(GroupError::RebalanceInProgress)
    );
    let (_, fx) = g.join(200, &req("a", ""), &S);
    let answers = joined(&fx);
    assert_eq!(answers.len(), 2);
    assert!(
        answers
            .iter()
            .all(|(_, r)| r.generation_id == generation + 1)
    );
    assert_eq!(g.state, GroupState::CompletingRebalance);
}

#[test]
fn members_that_do_not_rejoin_before_the_rebalance_timeout_are_removed() {
    let mut g = stable(&["a", "b"]);
    let generation = g.generation_id;
    let _ = g.join(1_000, &req("a", ""), &S);
    // "a" is the leader: its rejoin starts a rebalance; "b" heartbeats but never rejoins.
    assert_eq!(g.state, GroupState::PreparingRebalance);
    for t in [9_000, 18_000, 27_000] {
        assert_eq!(
            g.heartbeat(t, "b", generation, None),
            Some(GroupError::RebalanceInProgress)
        );
    }
    assert!(joined(&g.tick(30_999, &S)).is_empty());
    let fx = g.tick(31_000, &S);
    assert_eq!(
        joined(&fx)
            .iter()
            .map(|(m, _)| m.as_str())
            .collect::<Vec<_>>(),
        vec!["a"]
    );
    assert_eq!(g.members.keys().collect::<Vec<_>>(), vec!["a"]);
}

#[test]
fn session_expiry_removes_a_silent_member_and_rebalances() {
    let mut g = stable(&["a", "b"]);
    let generation = g.generation_id;
    assert!(
        g.tick(10_000, &S).is_empty(),
        "sessions of 10 s have not lapsed at 10 s"
    );
    assert_eq!(g.heartbeat(9_000, "a", generation, None), None);
    let fx = g.tick(10_001, &S);
    assert!(!g.members.contains_key("b"));
    assert_eq!(g.state, GroupState::PreparingRebalance, "{fx:?}");
    let (_, fx) = g.join(10_002, &req("a", ""), &S);
    assert_eq!(joined(&fx)[0].1.generation_id, generation + 1);
}

#[test]
fn leave_group_rebalances_the_rest_and_the_last_leaver_empties_it() {
    let mut g = stable(&["a", "b"]);
    let (results, _) = g.leave(0, &[("b".into(), None), ("zz".into(), None)], &S);
    assert_eq!(results, vec![None, Some(GroupError::UnknownMemberId)]);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let (_, fx) = g.join(1, &req("a", ""), &S);
    assert_eq!(joined(&fx).len(), 1);
    let (results, fx) = g.leave(2, &[("a".into(), None)], &S);
    assert_eq!(results, vec![None]);
    assert!(fx.contains(&Effect::Changed));
    assert_eq!((g.state, g.members.len()), (GroupState::Empty, 0));
}

#[test]
fn static_member_rejoining_keeps_its_assignment_and_fences_the_old_id() {
    let mut g = Group::new("g");
    let (r, fx) = g.join(0, &static_req("i-1", "old"), &S);
    assert_eq!(
        r,
        Reply::Park {
            member_id: "old".into()
        }
    );
    assert_eq!(
        joined(&fx).len(),
        1,
        "static members need no MEMBER_ID_REQUIRED round"
    );
    let (_, _) = g.sync(0, &sync("old", 1, &[("old", b"P0")]));
    assert_eq!(g.state, GroupState::Stable);
    // Restarted with the same group.instance.id: same assignment, no rebalance.
    let (r, _) = g.join(5, &static_req("i-1", "new"), &S);
    let Reply::Now(resp) = r else { panic!("{r:?}") };
    assert_eq!(
        (resp.member_id.as_str(), resp.generation_id, g.state),
        ("new", 1, GroupState::Stable)
    );
    let (r, _) = g.sync(
        6,
        &SyncRequest {
            group_instance_id: Some("i-1".into()),
            ..sync("new", 1, &[])
        },
    );
    assert_eq!(r, Reply::Now(g.sync_response("new")));
    assert_eq!(g.sync_response("new").assignment, Bytes::from_static(b"P0"));
    // The old incarnation is fenced everywhere.
    assert_eq!(
        g.heartbeat(7, "old", 1, Some("i-1")),
        Some(GroupError::FencedInstanceId)
    );
    let (r, _) = g.join(
        7,
        &JoinRequest {
            group_instance_id: Some("i-1".into()),
            ..req("old", "")
        },
        &S,
    );
    assert_eq!(
        r,
        Reply::Now(JoinResponse::error(GroupError::FencedInstanceId, "old"))
    );
    let (results, _) = g.leave(8, &[("old".into(), Some("i-1".into()))], &S);
    assert_eq!(results, vec![Some(GroupError::FencedInstanceId)]);
}

#[test]
fn incompatible_protocols_and_bad_session_timeouts_are_refused() {
    let mut g = stable(&["a"]);
    let other = JoinRequest {
        protocols: vec![Protocol {
            name: "other".into(),
            metadata: Bytes::new(),
        }],
        ..req("", "x")
    };
    let (r, _) = g.join(
        0,
        &JoinRequest {
            require_known_member_id: false,
            ..other
        },
        &S,
    );
    assert_eq!(
        r,
        Reply::Now(JoinResponse::error(
            GroupError::InconsistentGroupProtocol,
            ""
        ))
    );
    let connect = JoinRequest {
        protocol_type: "connect".into(),
        require_known_member_id: false,
        ..req("", "y")
    };
    let (r, _) = g.join(0, &connect, &S);
    assert_eq!(
        r,
        Reply::Now(JoinResponse::error(
            GroupError::InconsistentGroupProtocol,
            ""
        ))
    );
    let short = JoinRequest {
        session_timeout_ms: 100,
        ..req("", "z")
    };
    let (r, _) = g.join(0, &short, &S);
    assert_eq!(
        r,
        Reply::Now(JoinResponse::error(GroupError::InvalidSessionTimeout, ""))
    );
}

#[test]
fn commits_follow_kafkas_identity_rules() {
    let empty = Group::new("g");
    assert_eq!(
        empty.validate_commit("", -1, None),
        Ok(()),
        "simple consumers commit to empty groups"
    );
    let g = stable(&["a"]);
    let generation = g.generation_id;
    assert_eq!(g.validate_commit("a", generation, None), Ok(()));
    assert_eq!(
        g.validate_commit("", -1, None),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        g.validate_commit("a", generation + 5, None),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.validate_commit("zz", generation, None),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn transactional_commits_check_only_the_identity_they_carry() {
    let g = stable(&["a"]);
    let generation = g.generation_id;
    assert_eq!(
        g.validate_txn_commit("", -1, None),
        Ok(()),
        "before v3 a TxnOffsetCommit carries no identity"
    );
    assert_eq!(g.validate_txn_commit("a", generation, None), Ok(()));
    assert_eq!(g.validate_txn_commit("a", -1, None), Ok(()));
    assert_eq!(
        g.validate_txn_commit("a", generation + 1, None),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.validate_txn_commit("", generation + 1, None),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        g.validate_txn_commit("zz", generation, None),
        Err(GroupError::UnknownMemberId)
    );
    let mut rebalancing = stable(&["a"]);
    let newcomer = JoinRequest {
        require_known_member_id: false,
        ..req("", "b")
    };
    let _ = rebalancing.join(1, &newcomer, &S);
    assert_ne!(rebalancing.state, GroupState::Stable);
    assert_eq!(
        rebalancing.validate_txn_commit("a", generation, None),
        Ok(()),
        "a rebalance in progress does not refuse a transactional commit"
    );
}

#[test]
fn a_transactional_commit_from_a_replaced_static_member_is_fenced() {
    let mut g = Group::new("g");
    let _ = g.join(0, &static_req("i-1", "old"), &S);
    let _ = g.sync(0, &sync("old", 1, &[("old", b"P0")]));
    let _ = g.join(5, &static_req("i-1", "new"), &S);
    assert_eq!(g.validate_txn_commit("new", 1, Some("i-1")), Ok(()));
    assert_eq!(
        g.validate_txn_commit("old", 1, Some("i-1")),
        Err(GroupError::FencedInstanceId)
    );
}

#[test]
fn a_rebalance_answers_parked_syncs_of_the_old_generation() {
    let s = Settings {
        initial_rebalance_delay_ms: 0,
        ..S
    };
    let mut g = Group::new("g");
    for id in ["a", "b"] {
        let _ = g.join(
            0,
            &JoinRequest {
                require_known_member_id: false,
                ..req("", id)
            },
            &s,
        );
    }
    let _ = g.tick(0, &s);
    if g.state == GroupState::PreparingRebalance {
        let _ = g.join(
            0,
            &JoinRequest {
                require_known_member_id: false,
                ..req("a", "")
            },
            &s,
        );
        let _ = g.join(
            0,
            &JoinRequest {
                require_known_member_id: false,
                ..req("b", "")
            },
            &s,
        );
    }
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let follower = if g.leader.as_deref() == Some("a") {
        "b"
    } else {
        "a"
    };
    let (r, _) = g.sync(1, &sync(follower, g.generation_id, &[]));
    assert!(matches!(r, Reply::Park { .. }));
    let (_, fx) = g.join(
        2,
        &JoinRequest {
            require_known_member_id: false,
            ..req("", "c")
        },
        &s,
    );
    assert_eq!(
        synced(&fx),
        vec![(
            follower.to_string(),
            SyncResponse::error(GroupError::RebalanceInProgress)
        )]
    );
}

#[test]
fn unused_member_ids_lapse_after_the_session_timeout() {
    let mut g = Group::new("g");
    let _ = g.join(0, &req("", "m-1"), &S);
    let _ = g.tick(10_001, &S);
    let (r, _) = g.join(10_002, &req("m-1", ""), &S);
    assert_eq!(
        r,
        Reply::Now(JoinResponse::error(GroupError::UnknownMemberId, "m-1"))
    );
}
