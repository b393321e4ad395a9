//! Lease-based leader election against the fake API server: one leader at a time, takeover
//! after expiry, and a lost race (stale resourceVersion) is not leadership.

use crate::common;

use std::time::Duration;

use common::FakeApi;
use common::access::Scope;
use krait_operator::leader::{LeaseConfig, try_acquire};
use serde_json::json;

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";

fn candidate(identity: &str) -> LeaseConfig {
    LeaseConfig {
        namespace: "ops".into(),
        name: "krait-operator".into(),
        identity: identity.into(),
        duration: Duration::from_secs(15),
    }
}

#[tokio::test]
async fn one_candidate_leads_and_the_other_takes_over_after_expiry() {
    let api = FakeApi::default();
    let client = api.client();
    assert!(
        try_acquire(&client, &candidate("a")).await.unwrap(),
        "creates the lease"
    );
    assert!(
        !try_acquire(&client, &candidate("b")).await.unwrap(),
        "a's lease is live"
    );
    assert!(
        try_acquire(&client, &candidate("a")).await.unwrap(),
        "a renews"
    );
    assert_eq!(
        api.get(LEASES, "krait-operator").unwrap()["spec"]["holderIdentity"],
        "a"
    );

    // a stops renewing: its last renewal is long past.
    let mut lease = api.get(LEASES, "krait-operator").unwrap();
    lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    api.put(LEASES, lease);
    assert!(
        try_acquire(&client, &candidate("b")).await.unwrap(),
        "b takes over"
    );
    let lease = api.get(LEASES, "krait-operator").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(
        !try_acquire(&client, &candidate("a")).await.unwrap(),
        "a now follows"
    );
    api.check_accesses("leader_election", Scope::Namespaced);
}

#[tokio::test]
async fn losing_the_write_race_is_not_leadership() {
    let api = FakeApi::default();
    let client = api.client();
    assert!(try_acquire(&client, &candidate("a")).await.unwrap());
    let mut lease = api.get(LEASES, "krait-operator").unwrap();
    lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    api.put(LEASES, lease);
    // c takes the expired lease between b's read and b's write.
    api.race_after_next_get(LEASES, "krait-operator");
    assert!(
        !try_acquire(&client, &candidate("b")).await.unwrap(),
        "stale write refused"
    );
    assert_eq!(
        api.get(LEASES, "krait-operator").unwrap()["spec"]["holderIdentity"],
        "a"
    );
}
