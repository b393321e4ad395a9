//! An in-memory Kubernetes API server behind a tower-test mock service: enough of list (in a
//! namespace or across all), watch (accepted, and never answered: nothing changes behind a
//! test's back), get, server-side apply (objects and status), JSON-patch of finalizers, merge
//! patch, delete (a delete with `propagationPolicy: Orphan` leaves the object terminating until
//! the next request, when the garbage collector has orphaned its dependents and removed it)
//! and the pod eviction subresource (which honours PodDisruptionBudgets, `disruption.rs`) for
//! the reconcilers and the controllers, with every write recorded and any one write failable
//! on demand, every authorization check a real API server would make recorded (`access.rs`),
//! and the updates a real one refuses refused (`admission.rs`). Cluster-scoped StorageClasses,
//! Nodes and ClusterRoleBindings are stored too, and requests on a resource can be forbidden
//! (403), as an RBAC rule that is missing would. Events (events.k8s.io/v1) are created, patched (their `series`),
//! listed and read like any object, but kept out of the writes and the failable writes: those
//! are the reconciler's changes to the world, and an event is a report about them.
//!
//! Kinds a CRD outside Krait defines (the Prometheus Operator's, [`CRD_GROUPS`]) are served only
//! once a test installs that CRD ([`FakeApi::install_crd`]): until then their group version's
//! discovery document (`GET /apis/GROUP/VERSION`) and every request on them answer 404, as a
//! real API server does without the CRD (after authorizing the request, which is recorded).
//! Installed, discovery lists them and they are stored like any namespaced object. Discovery is
//! a non-resource URL that every authenticated client may read: it is not an authorization
//! check of `access.rs`. Discovery of Kubernetes' own groups is not served.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

use super::access::{self, Access, Scope, Target};
use super::admission::{self, STORAGE_CLASSES};
use super::disruption::{self, Verdict};

/// One write the reconciler made, e.g. `PATCH statefulsets/main`.
pub type Write = String;

/// An event as `kubectl describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSeen {
    pub type_: String,
    pub reason: String,
    pub note: String,
    pub regarding: String,
    pub related: Option<String>,
    pub count: i64,
}

#[derive(Default)]
struct State {
    /// (collection path, name) -> object.
    objects: BTreeMap<(String, String), Value>,
    writes: Vec<Write>,
    fail_write: Option<usize>,
    attempted_writes: usize,
    resource_version: u64,
    /// After the next GET of this object, someone else writes it (its resourceVersion moves).
    race_after_get: Option<(String, String)>,
    /// Every authorization check made so far.
    accesses: BTreeSet<Access>,
    /// Events (collection, name) in the order they were created.
    events: Vec<(String, String)>,
    /// Objects deleted with their dependents orphaned, which the garbage collector removes
    /// before the next request is served.
    orphaning: Vec<(String, String)>,
    /// How many times each object was created by a server-side apply.
    created: BTreeMap<(String, String), u32>,
    /// Resources every request on which is refused with a 403.
    forbidden: BTreeSet<String>,
    /// Custom resources served, by group version: plural -> kind.
    crds: BTreeMap<String, BTreeMap<String, String>>,
}

/// API groups whose kinds exist only where their CRDs are installed, and which the fake serves
/// only after [`FakeApi::install_crd`].
pub const CRD_GROUPS: &[&str] = &["monitoring.coreos.com", "cert-manager.io"];

/// What the fake does with a request.
enum Reply {
    Now(StatusCode, Value),
    /// A watch: the response never comes, as a watch on a world nobody changes.
    Hold,
}

/// Handle on the fake server's state.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

fn kind_of(plural: &str) -> &'static str {
    match plural {
        "statefulsets" => "StatefulSet",
        "services" => "Service",
        "configmaps" => "ConfigMap",
        "serviceaccounts" => "ServiceAccount",
        "poddisruptionbudgets" => "PodDisruptionBudget",
        "pods" => "Pod",
        "kafkaclusters" => "KafkaCluster",
        "kafkatopics" => "KafkaTopic",
        "kafkausers" => "KafkaUser",
        "secrets" => "Secret",
        "leases" => "Lease",
        "events" => "Event",
        "nodes" => "Node",
        "clusterrolebindings" => "ClusterRoleBinding",
        "podmonitors" => "PodMonitor",
        "certificates" => "Certificate",
        _ => "Unknown",
    }
}

fn status(code: u16, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn matches_selector(object: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| {
        let (k, v) = term.split_once('=').unwrap();
        object["metadata"]["labels"][k].as_str() == Some(v)
    })
}

impl FakeApi {
    /// A client talking to this fake, and the task serving it.
    pub fn client(&self) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = self.clone();
        tokio::spawn(async move {
            let mut watches = Vec::new();
            while let Some((request, respond)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap();
                let content_type = parts
                    .headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                let (code, value) =
                    match api.handle(&parts.method, &parts.uri, &content_type, &bytes) {
                        Reply::Now(code, value) => (code, value),
                        Reply::Hold => {
                            watches.push(respond);
                            continue;
                        }
                    };
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&value).unwrap()))
                    .unwrap();
                respond.send_response(response);
            }
        });
        Client::new(service, "default")
    }

    /// Stores an object as if created by someone else (a Secret's `stringData` is folded into
    /// `data`, base64-encoded, as the API server does on every write).
    pub fn put(&self, collection: &str, mut object: Value) {
        fold_string_data(&mut object);
        let mut s = self.state.lock().unwrap();
        s.resource_version += 1;
        let name = object["metadata"]["name"].as_str().unwrap().to_string();
        object["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
        s.objects.insert((collection.to_string(), name), object);
    }

    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        let s = self.state.lock().unwrap();
        s.objects
            .get(&(collection.to_string(), name.to_string()))
            .cloned()
    }

    /// Names stored in a collection.
    pub fn names(&self, collection: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.objects
            .keys()
            .filter(|(c, _)| c == collection)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// Deletes an object as `kubectl delete` would (finalizers honoured).
    pub fn delete_stored(&self, collection: &str, name: &str) -> Value {
        let mut s = self.state.lock().unwrap();
        delete_object(&mut s, collection.to_string(), name).1
    }

    /// The events published in `namespace`, oldest first: (type, reason, note, the name of
    /// the object it regards, the name of the related object, `series.count` or 1).
    pub fn events(&self, namespace: &str) -> Vec<EventSeen> {
        let s = self.state.lock().unwrap();
        let collection = format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events");
        s.events
            .iter()
            .filter(|(c, _)| *c == collection)
            .filter_map(|key| s.objects.get(key))
            .map(|e| EventSeen {
                type_: e["type"].as_str().unwrap_or_default().into(),
                reason: e["reason"].as_str().unwrap_or_default().into(),
                note: e["note"].as_str().unwrap_or_default().into(),
                regarding: e["regarding"]["name"].as_str().unwrap_or_default().into(),
                related: e["related"]["name"].as_str().map(String::from),
                count: e["series"]["count"].as_i64().unwrap_or(1),
            })
            .collect()
    }

    /// `type reason` of each event in `namespace`, oldest first.
    pub fn event_reasons(&self, namespace: &str) -> Vec<String> {
        self.events(namespace)
            .iter()
            .map(|e| format!("{} {}", e.type_, e.reason))
            .collect()
    }

    /// Writes made so far, and forgets them.
    pub fn take_writes(&self) -> Vec<Write> {
        std::mem::take(&mut self.state.lock().unwrap().writes)
    }

    /// The authorization checks a real API server would have made so far.
    pub fn accesses(&self) -> BTreeSet<Access> {
        self.state.lock().unwrap().accesses.clone()
    }

    /// Checks this scenario's authorization checks against its recorded file
    /// (`tests/rbac/<scenario>.json`, which the RBAC conformance test holds the chart to).
    pub fn check_accesses(&self, scenario: &str, scope: Scope) {
        access::check_recorded(scenario, scope, &self.accesses());
    }

    /// Refuses every later request on `resource` (e.g. `nodes`) with a 403, as the API server
    /// does when no RBAC rule allows it.
    pub fn forbid(&self, resource: &str) {
        self.state.lock().unwrap().forbidden.insert(resource.into());
    }

    /// Serves a custom resource from now on, as installing its CRD does: e.g.
    /// `install_crd("monitoring.coreos.com/v1", "podmonitors", "PodMonitor")`.
    pub fn install_crd(&self, group_version: &str, plural: &str, kind: &str) {
        self.state
            .lock()
            .unwrap()
            .crds
            .entry(group_version.into())
            .or_default()
            .insert(plural.into(), kind.into());
    }

    /// Makes the `n`th write from now (0-based) fail with a 500.
    pub fn fail_write_in(&self, n: usize) {
        let mut s = self.state.lock().unwrap();
        s.fail_write = Some(s.attempted_writes + n);
    }

    /// Simulates another writer updating the object right after the next read of it.
    pub fn race_after_next_get(&self, collection: &str, name: &str) {
        self.state.lock().unwrap().race_after_get =
            Some((collection.to_string(), name.to_string()));
    }

    /// Every stored object except status and events (named by the clock), for comparing two
    /// runs.
    pub fn snapshot(&self) -> BTreeMap<(String, String), Value> {
        let s = self.state.lock().unwrap();
        s.objects
            .iter()
            .filter(|((c, _), _)| !c.ends_with("/events"))
            .map(|(k, v)| {
                let mut v = v.clone();
                v["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("resourceVersion");
                (k.clone(), v)
            })
            .collect()
    }

    fn handle(&self, method: &Method, uri: &http::Uri, content_type: &str, body: &[u8]) -> Reply {
        if let Some(group_version) = discovery_path(uri.path()) {
            let s = self.state.lock().unwrap();
            let (code, value) = discovery(&s, &group_version);
            return Reply::Now(code, value);
        }
        let Some(target) = Target::parse(uri.path()) else {
            let (code, value) = status(404, "NotFound", "not an API path");
            return Reply::Now(code, value);
        };
        let query: BTreeMap<String, String> = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), percent_decode(v)))
            .collect();
        let verb = target.verb(method, &query);
        let mut s = self.state.lock().unwrap();
        collect_garbage(&mut s);
        let mut access = target.access(verb);
        if target.resource == "events" {
            // Every event has a name of its own, made up when it is created: RBAC rules for
            // events never name one, and the recording must not depend on the clock.
            access.name.clear();
        }
        s.accesses.insert(access.clone());
        if s.forbidden.contains(&target.resource) {
            let message = format!(
                "{} \"{}\" is forbidden: User cannot {verb} resource \"{}\" in API group \"{}\"",
                target.resource, access.name, target.resource, target.group
            );
            let (code, value) = status(403, "Forbidden", &message);
            return Reply::Now(code, value);
        }
        if !served(&s, &target) {
            let (code, value) = status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            );
            return Reply::Now(code, value);
        }
        if verb == "watch" {
            return Reply::Hold;
        }
        let (code, value) = match target.collection() {
            Some(collection) => serve(
                &mut s,
                method,
                &target,
                collection,
                &query,
                content_type,
                body,
            ),
            None if verb == "list" => list(
                &s,
                &target,
                |c| {
                    c.starts_with(&format!("{}/namespaces/", target.prefix))
                        && c.ends_with(&format!("/{}", target.resource))
                },
                &query,
            ),
            None => status(404, "NotFound", "cluster-scoped objects are not served"),
        };
        Reply::Now(code, value)
    }
}

/// `GROUP/VERSION` of a group version's discovery path, `/apis/GROUP/VERSION`.
fn discovery_path(path: &str) -> Option<String> {
    match path
        .trim_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["apis", group, version] => Some(format!("{group}/{version}")),
        _ => None,
    }
}

/// The APIResourceList of an installed CRD group version; a 404 for one not served.
fn discovery(s: &State, group_version: &str) -> (StatusCode, Value) {
    let group = group_version.split('/').next().unwrap_or_default();
    if !CRD_GROUPS.contains(&group) {
        return status(
            404,
            "NotFound",
            "discovery of Kubernetes' own groups is not served by the fake",
        );
    }
    let Some(kinds) = s.crds.get(group_version) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let resources: Vec<Value> = kinds
        .iter()
        .map(|(plural, kind)| {
            json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": true,
                   "kind": kind, "verbs": ["delete", "deletecollection", "get", "list", "patch",
                   "create", "update", "watch"]})
        })
        .collect();
    (
        StatusCode::OK,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
               "resources": resources}),
    )
}

/// Whether the target's resource exists: always, but for a [`CRD_GROUPS`] kind whose CRD is
/// not installed.
fn served(s: &State, target: &Target) -> bool {
    if !CRD_GROUPS.contains(&target.group.as_str()) {
        return true;
    }
    let group_version = target.prefix.trim_start_matches("/apis/");
    s.crds
        .get(group_version)
        .is_some_and(|kinds| kinds.contains_key(&target.resource))
}

fn list(
    s: &State,
    target: &Target,
    in_collection: impl Fn(&str) -> bool,
    query: &BTreeMap<String, String>,
) -> (StatusCode, Value) {
    let items: Vec<Value> = s
        .objects
        .iter()
        .filter(|((c, _), o)| {
            in_collection(c) && matches_selector(o, query.get("labelSelector").map(String::as_str))
        })
        .map(|(_, o)| o.clone())
        .collect();
    let rv = s.resource_version.to_string();
    (
        StatusCode::OK,
        json!({"apiVersion": "v1", "kind": format!("{}List", kind_of(&target.resource)),
               "metadata": {"resourceVersion": rv}, "items": items}),
    )
}

/// A request on a namespaced collection or one of its objects.
fn serve(
    s: &mut State,
    method: &Method,
    target: &Target,
    collection: String,
    query: &BTreeMap<String, String>,
    content_type: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let name = target.name.as_deref();
    let subresource = target.subresource.as_deref();
    if *method != Method::GET && target.resource != "events" {
        let attempt = s.attempted_writes;
        s.attempted_writes += 1;
        if s.fail_write == Some(attempt) {
            return status(500, "InternalError", "injected failure");
        }
        s.writes.push(format!(
            "{method} {}/{}{}",
            target.resource,
            name.unwrap_or(""),
            subresource.map(|r| format!("/{r}")).unwrap_or_default()
        ));
    }
    match (method.clone(), name) {
        (Method::GET, None) => list(s, target, |c| c == collection, query),
        (Method::GET, Some(name)) => {
            let key = (collection, name.to_string());
            let found = s.objects.get(&key).cloned();
            if s.race_after_get.as_ref() == Some(&key) {
                s.race_after_get = None;
                s.resource_version += 1;
                let rv = s.resource_version.to_string();
                s.objects.get_mut(&key).unwrap()["metadata"]["resourceVersion"] = json!(rv);
            }
            match found {
                Some(o) => (StatusCode::OK, o),
                None => status(404, "NotFound", "not found"),
            }
        }
        (Method::PATCH, Some(name)) => {
            let patch: Value = serde_json::from_slice(body).unwrap();
            let old = s
                .objects
                .get(&(collection.clone(), name.to_string()))
                .cloned();
            let applied = content_type.starts_with("application/apply-patch");
            let (code, object) =
                patch_object(s, collection, name, subresource, content_type, patch);
            if code == StatusCode::OK && subresource.is_none() {
                if old.is_none() && applied {
                    // Server-side apply of an absent object creates it: also a create.
                    s.accesses.insert(target.access("create"));
                }
                let checks = access::owner_reference_checks(target, old.as_ref(), &object);
                s.accesses.extend(checks);
                let checks = access::binding_checks(target, old.as_ref(), &object);
                s.accesses.extend(checks);
            }
            (code, object)
        }
        (Method::DELETE, Some(name)) => {
            let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            delete_with_options(s, collection, name, &options)
        }
        (Method::POST, None) => {
            let object: Value = serde_json::from_slice(body).unwrap();
            if target.resource == "events" {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                s.events.push((collection.clone(), name.to_string()));
            }
            let (code, object) = create_object(s, collection, object);
            if code == StatusCode::CREATED {
                s.accesses
                    .extend(access::owner_reference_checks(target, None, &object));
                s.accesses
                    .extend(access::binding_checks(target, None, &object));
            }
            (code, object)
        }
        (Method::POST, Some(name)) if subresource == Some("eviction") => {
            evict(s, target, collection, name)
        }
        (Method::PUT, Some(name)) => {
            let object: Value = serde_json::from_slice(body).unwrap();
            replace_object(s, collection, name, object)
        }
        _ => status(405, "MethodNotAllowed", "not served by the fake"),
    }
}

/// The eviction subresource: deletes the pod unless its PodDisruptionBudget allows no
/// disruption now.
fn evict(s: &mut State, target: &Target, pods: String, name: &str) -> (StatusCode, Value) {
    let Some(pod) = s.objects.get(&(pods.clone(), name.to_string())) else {
        return status(404, "NotFound", &format!("pods \"{name}\" not found"));
    };
    let ns = target.namespace.as_deref().unwrap_or_default();
    let budgets = format!("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets");
    let in_collection = |collection: &str| -> Vec<Value> {
        s.objects
            .iter()
            .filter(|((c, _), _)| c == collection)
            .map(|(_, o)| o.clone())
            .collect()
    };
    match disruption::decide(pod, &in_collection(&budgets), &in_collection(&pods)) {
        Verdict::Evict => {
            delete_object(s, pods, name);
            (
                StatusCode::CREATED,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Success", "code": 201}),
            )
        }
        Verdict::Refuse(code, reason, message, cause) => {
            let (code, mut body) = status(code, reason, message);
            if let Some(cause) = cause {
                body["details"] =
                    json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
            }
            (code, body)
        }
    }
}

fn patch_object(
    s: &mut State,
    collection: String,
    name: &str,
    subresource: Option<&str>,
    content_type: &str,
    patch: Value,
) -> (StatusCode, Value) {
    let key = (collection, name.to_string());
    let existing = s.objects.get(&key).cloned();
    let before = existing.clone();
    let mut object = match (content_type, subresource, existing) {
        (ct, _, Some(mut o)) if ct.starts_with("application/json-patch") => {
            apply_json_patch(&mut o, &patch);
            o
        }
        (ct, None, Some(mut o)) if ct.starts_with("application/merge-patch") => {
            merge_patch(&mut o, &patch);
            o
        }
        (_, Some("status"), Some(mut o)) => {
            o["status"] = patch["status"].clone();
            o
        }
        (_, Some(_), None) => return status(404, "NotFound", "not found"),
        (ct, None, existing) if ct.starts_with("application/apply-patch") => {
            let mut o = patch;
            let generation = match &existing {
                Some(e) if e["spec"] != o["spec"] => {
                    e["metadata"]["generation"].as_i64().unwrap_or(1) + 1
                }
                Some(e) => e["metadata"]["generation"].as_i64().unwrap_or(1),
                None => 1,
            };
            if let Some(e) = existing {
                o["status"] = e["status"].clone();
                o["metadata"]["uid"] = e["metadata"]["uid"].clone();
            } else {
                // A new uid each time an object of this name is created again.
                let created = s.created.entry(key.clone()).or_insert(0);
                *created += 1;
                o["metadata"]["uid"] = match *created {
                    1 => json!(format!("uid-{name}")),
                    n => json!(format!("uid-{name}-{n}")),
                };
            }
            o["metadata"]["generation"] = json!(generation);
            o
        }
        _ => return status(404, "NotFound", "not found"),
    };
    if let (Some(old), None) = (&before, subresource) {
        let class = |name: &str| {
            s.objects
                .get(&(STORAGE_CLASSES.to_string(), name.to_string()))
                .cloned()
        };
        if let Err((code, reason, message)) = admission::check_update(&key.0, old, &object, class) {
            return status(code, reason, &message);
        }
    }
    fold_string_data(&mut object);
    s.resource_version += 1;
    object["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
    let finalized = object["metadata"]["deletionTimestamp"].is_string()
        && object["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty());
    if finalized {
        s.objects.remove(&key);
        return (StatusCode::OK, object);
    }
    s.objects.insert(key, object.clone());
    (StatusCode::OK, object)
}

fn create_object(s: &mut State, collection: String, mut object: Value) -> (StatusCode, Value) {
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    let key = (collection, name);
    if s.objects.contains_key(&key) {
        return status(409, "AlreadyExists", "already exists");
    }
    s.resource_version += 1;
    object["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
    s.objects.insert(key, object.clone());
    (StatusCode::CREATED, object)
}

/// The API server's handling of a Secret's write-only `stringData`: each entry replaces the
/// same key of `data`, base64-encoded, and `stringData` is not stored.
fn fold_string_data(object: &mut Value) {
    use base64::Engine as _;
    let Some(Value::Object(strings)) = object.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    let data = object["data"].as_object().cloned().unwrap_or_default();
    let mut data = data;
    for (key, value) in strings {
        let text = value.as_str().unwrap_or_default();
        data.insert(
            key,
            json!(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
    object["data"] = Value::Object(data);
}

/// Replace with optimistic concurrency: a stale resourceVersion is a 409 Conflict.
fn replace_object(
    s: &mut State,
    collection: String,
    name: &str,
    mut object: Value,
) -> (StatusCode, Value) {
    let key = (collection, name.to_string());
    let Some(existing) = s.objects.get(&key) else {
        return status(404, "NotFound", "not found");
    };
    if object["metadata"]["resourceVersion"] != existing["metadata"]["resourceVersion"] {
        return status(409, "Conflict", "the object has been modified");
    }
    s.resource_version += 1;
    object["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
    s.objects.insert(key, object.clone());
    (StatusCode::OK, object)
}

/// A DELETE with its options: a `uid` precondition that does not hold is a 409; with
/// `propagationPolicy: Orphan` the object is marked for deletion with the `orphan` finalizer
/// and removed by [`collect_garbage`] before the next request.
fn delete_with_options(
    s: &mut State,
    collection: String,
    name: &str,
    options: &Value,
) -> (StatusCode, Value) {
    let key = (collection, name.to_string());
    let Some(object) = s.objects.get_mut(&key) else {
        return status(404, "NotFound", "not found");
    };
    let uid = &options["preconditions"]["uid"];
    if uid.is_string() && *uid != object["metadata"]["uid"] {
        return status(
            409,
            "Conflict",
            "Precondition failed: UID in precondition does not match the object's",
        );
    }
    if options["propagationPolicy"] != json!("Orphan") {
        return delete_object(s, key.0, name);
    }
    object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    let finalizers = object["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !finalizers.contains(&json!("orphan")) {
        let mut finalizers = finalizers;
        finalizers.push(json!("orphan"));
        object["metadata"]["finalizers"] = json!(finalizers);
    }
    let object = object.clone();
    if !s.orphaning.contains(&key) {
        s.orphaning.push(key);
    }
    (StatusCode::OK, object)
}

/// The garbage collector's work on orphaning deletes: dependents lose their owner reference
/// to the object, then the object goes.
fn collect_garbage(s: &mut State) {
    for key in std::mem::take(&mut s.orphaning) {
        let Some(object) = s.objects.remove(&key) else {
            continue;
        };
        let uid = object["metadata"]["uid"].clone();
        for dependent in s.objects.values_mut() {
            if let Some(refs) = dependent["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"] != uid);
            }
        }
    }
}

/// Deletes, or with finalizers present marks for deletion, as the API server does.
fn delete_object(s: &mut State, collection: String, name: &str) -> (StatusCode, Value) {
    let key = (collection, name.to_string());
    let Some(object) = s.objects.get_mut(&key) else {
        return status(404, "NotFound", "not found");
    };
    let has_finalizers = object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        return (StatusCode::OK, object.clone());
    }
    (StatusCode::OK, s.objects.remove(&key).unwrap())
}

/// RFC 7386: objects merge key by key, `null` deletes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let object = target.as_object_mut().unwrap();
    for (key, value) in fields {
        if value.is_null() {
            object.remove(key);
        } else {
            merge_patch(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The JSON-patch operations kube's finalizer helper sends: test, add, remove.
fn apply_json_patch(object: &mut Value, patch: &Value) {
    for op in patch.as_array().unwrap() {
        let path = op["path"].as_str().unwrap();
        match op["op"].as_str().unwrap() {
            "test" => {}
            "add" if path == "/metadata/finalizers" => {
                object["metadata"]["finalizers"] = op["value"].clone()
            }
            "add" if path == "/metadata/finalizers/-" => object["metadata"]["finalizers"]
                .as_array_mut()
                .unwrap()
                .push(op["value"].clone()),
            "remove" => {
                let index: usize = path.rsplit('/').next().unwrap().parse().unwrap();
                object["metadata"]["finalizers"]
                    .as_array_mut()
                    .unwrap()
                    .remove(index);
            }
            other => panic!("json patch {other} {path} not served by the fake"),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
