//! A voter with an empty log places itself before it takes part: new voters form the quorum
//! together, and a voter whose data directory was lost refuses to come back as itself (it
//! would have forgotten its votes and the entries it acknowledged).

mod support;

use std::time::Duration;

use krait_image::ClusterImage;
use support::{Cluster, create_topic, register, topics, within};

async fn formed_with_topic_a() -> (Cluster, i32) {
    let mut cluster = Cluster::new(&[1, 2, 3]).await;
    for id in [3, 1, 2] {
        cluster.start(id).await;
    }
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let records = vec![register(1), create_topic("a", &[1])];
    cluster.quorum(leader).propose(records).await.unwrap();
    cluster
        .images_reach(&[1, 2, 3], |i| topics(i) == ["a"])
        .await;
    (cluster, leader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_refuses_to_start_and_the_others_keep_committing() {
    let (mut cluster, leader) = formed_with_topic_a().await;
    let wiped = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    cluster.stop(wiped).await;
    cluster.wipe(wiped);

    let quorum = cluster.start(wiped).await;
    let why = within("the wiped voter refuses", quorum.fatal_error()).await;
    assert!(why.contains("data directory was lost"), "{why}");
    let metrics = quorum.raft_metrics().borrow().clone();
    assert_eq!(metrics.current_term, 0, "it never voted");
    assert_eq!(metrics.last_log_index, None, "it holds no log");

    let rest: Vec<i32> = [1, 2, 3].into_iter().filter(|id| *id != wiped).collect();
    let leader = cluster.agreed_leader(&rest).await;
    let more = cluster
        .quorum(leader)
        .propose(vec![create_topic("b", &[1])]);
    assert_eq!(more.await.unwrap(), vec![Ok(())]);
    cluster
        .images_reach(&rest, |i| topics(i) == ["a", "b"])
        .await;
}

/// The danger itself: with the leader down, the one intact follower needs the wiped voter's
/// vote to lead. A wiped voter that voted would make a majority with no memory of the past;
/// this one gives no vote, so no leader is elected until the old leader is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_gives_no_vote_to_a_follower_while_the_leader_is_down() {
    let (mut cluster, leader) = formed_with_topic_a().await;
    let mut others = [1, 2, 3].into_iter().filter(|id| *id != leader);
    let (wiped, intact) = (others.next().unwrap(), others.next().unwrap());
    cluster.stop(leader).await;
    cluster.stop(wiped).await;
    cluster.wipe(wiped);
    let quorum = cluster.start(wiped).await;

    // Elections time out every 300-600 ms here: two seconds is several rounds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        cluster.quorum(intact).leader(),
        None,
        "no leader without a real majority"
    );
    assert_eq!(
        quorum.raft_metrics().borrow().current_term,
        0,
        "the wiped voter never voted"
    );

    cluster.start(leader).await;
    let why = within("the wiped voter refuses", quorum.fatal_error()).await;
    assert!(why.contains("data directory was lost"), "{why}");
    let new_leader = cluster.agreed_leader(&[leader, intact]).await;
    let image: std::sync::Arc<ClusterImage> = cluster.image(new_leader);
    assert_eq!(topics(&image), vec!["a"], "nothing committed was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_voters_started_seconds_apart_form_one_quorum() {
    let mut cluster = Cluster::new(&[1, 2, 3]).await;
    let first = cluster.start(2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(first.leader(), None, "a voter does not form alone");
    cluster.start(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.start(3).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let applied = cluster
        .quorum(leader)
        .propose(vec![register(1), create_topic("a", &[1])]);
    assert_eq!(applied.await.unwrap(), vec![Ok(()), Ok(())]);
    cluster
        .images_reach(&[1, 2, 3], |i| topics(i) == ["a"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_single_voter_forms_a_new_quorum() {
    let mut cluster = Cluster::new(&[1]).await;
    cluster.start(1).await;
    cluster.agreed_leader(&[1]).await;
    cluster.stop(1).await;
    cluster.wipe(1);
    cluster.start(1).await;
    assert_eq!(cluster.agreed_leader(&[1]).await, 1);
}
