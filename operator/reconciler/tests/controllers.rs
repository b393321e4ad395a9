//! The controllers `krait-operator run` starts, on the fake API server: which collections
//! they list and watch in each RBAC mode of the chart (the watched namespaces, or all
//! namespaces), recorded for the RBAC conformance test.

use crate::common;

use std::time::{Duration, Instant};

use common::access::Scope;
use common::{FakeApi, FakeKafka, context};
use futures_util::future::join_all;
use krait_operator::run::controllers;

/// The resources the controllers watch: their own kinds and what a cluster owns.
const WATCHED: [&str; 7] = [
    "kafkaclusters",
    "kafkatopics",
    "statefulsets",
    "services",
    "configmaps",
    "poddisruptionbudgets",
    "serviceaccounts",
];

/// Starts the controllers for `namespaces` and waits until every watch of every scope is
/// open (the fake never answers a watch, so nothing further happens), then stops them.
async fn record_watches(namespaces: &[String]) -> FakeApi {
    let api = FakeApi::default();
    let ctx = context(&api, &FakeKafka::default());
    let running = tokio::spawn(join_all(controllers(&ctx, namespaces)));
    let scopes: Vec<String> = match namespaces {
        [] => vec![String::new()],
        some => some.to_vec(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let accesses = api.accesses();
        let open = |resource: &str, ns: &str| {
            accesses
                .iter()
                .any(|a| a.verb == "watch" && a.resource == resource && a.namespace == ns)
        };
        if WATCHED.iter().all(|r| scopes.iter().all(|ns| open(r, ns))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the controllers did not open every watch: {accesses:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.abort();
    api
}

#[tokio::test]
async fn in_watched_namespaces_the_controllers_list_and_watch_only_there() {
    let api = record_watches(&["kafka".to_string(), "kafka-b".to_string()]).await;
    assert!(api.accesses().iter().all(|a| !a.namespace.is_empty()));
    api.check_accesses("controllers_watched_namespaces", Scope::Namespaced);
}

#[tokio::test]
async fn watching_all_namespaces_the_controllers_list_and_watch_cluster_wide() {
    let api = record_watches(&[]).await;
    assert!(api.accesses().iter().all(|a| a.namespace.is_empty()));
    api.check_accesses("controllers_all_namespaces", Scope::AllNamespaces);
}
