//! Publishes Kubernetes Events (events.k8s.io/v1) about the resources the operator manages, the
//! record `kubectl describe` shows a user: what the operator did and why, and what it refused.
//! Best effort, as Kubernetes' own controllers treat events: a failed publish is logged and
//! never fails a reconcile. What to say is decided elsewhere (`cluster/events.rs`, pure); this
//! module only writes.
//!
//! An occurrence that repeats with the same reason and note within [`SERIES_WINDOW`] updates
//! the first event's `series` (count, last seen) instead of creating another, as client-go's
//! recorder does. Unlike kube-runtime's `Recorder`, the note is part of what makes two
//! occurrences the same: "restarting broker 1" and "restarting broker 2" are two events, not
//! one counted twice under the first one's note.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tracing::{debug, warn};

/// How long after its last occurrence a repeat is counted on the same event (client-go: 6
/// minutes).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// The API server's limit on `note`.
const MAX_NOTE: usize = 1024;

/// `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Normal,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// One thing to tell the user about a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub severity: Severity,
    /// Why, in UpperCamelCase (`kubectl describe`'s "Reason").
    pub reason: String,
    /// What the operator did or tried, in UpperCamelCase (e.g. `Evict`, `Reassign`).
    pub action: &'static str,
    /// The human-readable detail (`kubectl describe`'s "Message").
    pub note: String,
    /// A second object the event is about (the evicted pod).
    pub related: Option<ObjectReference>,
}

impl Note {
    pub fn normal(reason: &str, action: &'static str, note: impl Into<String>) -> Self {
        Self {
            severity: Severity::Normal,
            reason: reason.to_string(),
            action,
            note: note.into(),
            related: None,
        }
    }

    pub fn warning(reason: &str, action: &'static str, note: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::normal(reason, action, note)
        }
    }
}

/// The event of a reconcile that failed: the error, which the controller retries.
pub fn failure(error: &str) -> Note {
    Note::warning("ReconcileFailed", "Reconcile", error)
}

/// What makes two occurrences the same event: the object, and everything the user reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    regarding: String,
    severity: Severity,
    reason: String,
    action: &'static str,
    note: String,
    related: Option<String>,
}

impl Key {
    fn new(regarding: &ObjectReference, note: &Note) -> Self {
        let id = |r: &ObjectReference| {
            format!(
                "{}/{}/{}/{}",
                r.kind.as_deref().unwrap_or_default(),
                r.namespace.as_deref().unwrap_or_default(),
                r.name.as_deref().unwrap_or_default(),
                r.uid.as_deref().unwrap_or_default()
            )
        };
        Self {
            regarding: id(regarding),
            severity: note.severity,
            reason: note.reason.clone(),
            action: note.action,
            note: note.note.clone(),
            related: note.related.as_ref().map(id),
        }
    }
}

/// An event created earlier, for counting its repeats.
#[derive(Debug, Clone)]
struct Published {
    name: String,
    count: i32,
    last: Timestamp,
}

/// Writes events as one reporting controller instance.
pub struct Recorder {
    client: Client,
    /// `reportingController`: the operator's name.
    controller: String,
    /// `reportingInstance`: this replica (its pod name).
    instance: String,
    published: Mutex<HashMap<Key, Published>>,
    sequence: AtomicU64,
}

impl Recorder {
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.to_string(),
            published: Mutex::default(),
            sequence: AtomicU64::new(0),
        }
    }

    /// Publishes each note about `regarding`, logging (not returning) failures.
    pub async fn publish_all(&self, regarding: &ObjectReference, notes: &[Note]) {
        for note in notes {
            if let Err(error) = self.publish(regarding, note).await {
                warn!(%error, reason = %note.reason, "could not publish an event");
            }
        }
    }

    /// Creates the event, or counts a repeat of one created less than [`SERIES_WINDOW`] ago.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        note: &Note,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = Key::new(regarding, note);
        let repeat = self.repeat_of(&key, now);
        let namespace = regarding.namespace.clone().unwrap_or("default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Some(previous) = repeat {
            let series = EventSeries {
                count: previous.count + 1,
                last_observed_time: MicroTime(now),
            };
            let patch = serde_json::json!({ "series": series });
            debug!(reason = %note.reason, count = series.count, "event repeated");
            api.patch(
                &previous.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
            self.remember(
                key,
                Published {
                    count: series.count,
                    last: now,
                    ..previous
                },
            );
            return Ok(());
        }
        let event = self.event(regarding, note, &namespace, now);
        let name = event.metadata.name.clone().unwrap_or_default();
        debug!(reason = %note.reason, %name, "publishing event");
        api.create(&PostParams::default(), &event).await?;
        self.remember(
            key,
            Published {
                name,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    /// The earlier event this occurrence repeats, forgetting those too old to count.
    fn repeat_of(&self, key: &Key, now: Timestamp) -> Option<Published> {
        let window = k8s_openapi::jiff::SignedDuration::try_from(SERIES_WINDOW).ok()?;
        let mut published = self.published.lock().ok()?;
        published.retain(|_, p| p.last + window > now);
        published.get(key).cloned()
    }

    fn remember(&self, key: Key, published: Published) {
        if let Ok(mut map) = self.published.lock() {
            map.insert(key, published);
        }
    }

    fn event(
        &self,
        regarding: &ObjectReference,
        note: &Note,
        namespace: &str,
        now: Timestamp,
    ) -> Event {
        // Unique per occurrence, as the API server wants and kubectl does not show.
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}.{:x}{:x}",
            regarding.name.as_deref().unwrap_or(&self.controller),
            now.as_nanosecond(),
            sequence
        );
        Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(note.severity.as_str().into()),
            reason: Some(note.reason.clone()),
            action: Some(note.action.into()),
            note: Some(truncate(&note.note, MAX_NOTE)),
            regarding: Some(regarding.clone()),
            related: note.related.clone(),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

/// At most `max` bytes, cut on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_note_is_cut_on_a_character_boundary() {
        let note = "é".repeat(600);
        let cut = truncate(&note, MAX_NOTE);
        assert!(cut.len() <= MAX_NOTE);
        assert_eq!(cut.chars().count(), 512);
    }
}
