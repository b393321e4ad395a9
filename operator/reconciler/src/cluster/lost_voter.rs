//! A metadata quorum voter whose volume was lost (a new PersistentVolumeClaim, a wiped disk)
//! must not come back as itself: it forgot its votes and the entries it acknowledged. Its
//! broker refuses to start and says why in its termination message (the container's
//! `terminationMessagePath`), naming the data directory the quorum knows it by. That is how the
//! operator learns of it; the replacement itself (`scale.rs`) removes the voter of that
//! directory, restarts the pod so it joins as an observer on its new volume, and makes it a
//! voter again once it has caught up, as `krait cluster remove-voter` / `add-voter` would.

use k8s_openapi::api::core::v1::{ContainerState, Pod};

/// The container that runs the broker.
const BROKER_CONTAINER: &str = "broker";

/// What the broker's refusal says right before the lost directory's id
/// (`broker/metadata/src/formation.rs`; its tests hold the words in place).
const LOST_DIRECTORY_WORDS: &str = "as a voter that joined with data directory ";

/// The data directory `pod`'s broker reports its voter lost: only while the broker container
/// is not running, from its last termination (a running broker's old message is history).
pub fn lost_directory(pod: &Pod) -> Option<String> {
    let status = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == BROKER_CONTAINER)?;
    let state = status.state.as_ref();
    if state.is_some_and(|s| s.running.is_some()) {
        return None;
    }
    let message = |s: Option<&ContainerState>| {
        s.and_then(|s| s.terminated.as_ref())
            .and_then(|t| t.message.clone())
    };
    message(state)
        .or_else(|| message(status.last_state.as_ref()))
        .and_then(|m| parse(&m))
}

/// The lost directory's id in a broker's termination message.
pub fn parse(message: &str) -> Option<String> {
    let (_, rest) = message.split_once(LOST_DIRECTORY_WORDS)?;
    let id: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .collect();
    (id.len() == 36).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The broker's refusal as it writes it.
    const REFUSAL: &str = "the metadata quorum stopped: this node's metadata log is empty, but voter 0 knows node 2 as a voter that joined with data directory 6f1c2a9e-4b7d-4c1e-9a53-0d2b8e7f4a11 (this one is 0b5e...): its data directory was lost";

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "main-2"}, "status": status})).unwrap()
    }

    #[test]
    fn a_crash_looping_broker_names_the_directory_it_lost() {
        let waiting = pod(json!({"containerStatuses": [{
            "name": "broker", "ready": false, "restartCount": 3, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "message": REFUSAL}}}]}));
        assert_eq!(
            lost_directory(&waiting).as_deref(),
            Some("6f1c2a9e-4b7d-4c1e-9a53-0d2b8e7f4a11")
        );
        let terminated = pod(json!({"containerStatuses": [{
            "name": "broker", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
            "state": {"terminated": {"exitCode": 1, "message": REFUSAL}}}]}));
        assert!(lost_directory(&terminated).is_some());
    }

    #[test]
    fn a_running_broker_or_another_failure_reports_nothing() {
        let running = pod(json!({"containerStatuses": [{
            "name": "broker", "ready": true, "restartCount": 1, "image": "i", "imageID": "",
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "message": REFUSAL}}}]}));
        assert_eq!(lost_directory(&running), None);
        let other = pod(json!({"containerStatuses": [{
            "name": "broker", "ready": false, "restartCount": 1, "image": "i", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "message": "cannot open the store"}}}]}));
        assert_eq!(lost_directory(&other), None);
        assert_eq!(lost_directory(&pod(json!({}))), None);
        assert_eq!(parse("joined with data directory 1234"), None);
    }
}
