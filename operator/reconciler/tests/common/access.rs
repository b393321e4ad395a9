//! What the fake API server's authorizer would be asked: each request's attributes as the
//! real kube-apiserver derives them for RBAC (verb from the HTTP method and the `watch`
//! parameter, API group, resource, subresource, namespace, name), plus the extra checks it
//! makes inside a request (`create` when a server-side apply creates the object; `update` on
//! the owner's `finalizers` when an object gains an owner reference with
//! `blockOwnerDeletion`, as the OwnerReferencesPermissionEnforcement admission plugin does;
//! `bind` on the role a ClusterRoleBinding refers to when the binding is created or changed,
//! as RBAC's escalation check does first).
//!
//! Scenario tests compare what they recorded with `tests/rbac/<scenario>.json`, which
//! `tests/integration/test_rbac.py` checks against the chart's rendered RBAC rules in both its
//! namespaced and cluster-wide modes. Re-record with `KRAIT_RBAC_RECORD=1 cargo test -p
//! krait-operator` after a change to what the operator asks of the API server, and review
//! the diff: it is the operator's RBAC footprint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use http::Method;
use serde_json::{Value, json};

/// One authorization check, as in a SubjectAccessReview's `resourceAttributes`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    /// Empty for a request across all namespaces (or a cluster-scoped one).
    pub namespace: String,
    pub name: String,
}

/// Cluster-scoped resources the fake stores.
const CLUSTER_SCOPED: &[&str] = &["storageclasses", "nodes", "clusterrolebindings"];

/// A request path as the API server reads it:
/// `/api/v1[/namespaces/NS]/RESOURCE[/NAME[/SUBRESOURCE]]` or the same under
/// `/apis/GROUP/VERSION`, with the legacy `/watch/` prefix after the version.
#[derive(Debug, Clone)]
pub struct Target {
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    pub prefix: String,
    pub group: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    legacy_watch: bool,
}

impl Target {
    pub fn parse(path: &str) -> Option<Self> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (prefix, group, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => (format!("/api/{version}"), String::new(), rest),
            ["apis", group, version, rest @ ..] => {
                (format!("/apis/{group}/{version}"), group.to_string(), rest)
            }
            _ => return None,
        };
        let (legacy_watch, rest) = match rest {
            ["watch", rest @ ..] => (true, rest),
            rest => (false, rest),
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
            rest => (None, rest),
        };
        let owned = |s: Option<&&str>| s.map(|s| s.to_string());
        Some(Self {
            prefix,
            group,
            namespace,
            resource: rest.first()?.to_string(),
            name: owned(rest.get(1)),
            subresource: owned(rest.get(2)),
            legacy_watch,
        })
    }

    /// The key of the collection this target's objects are stored under: a namespaced one,
    /// or one of the cluster-scoped kinds the fake serves (StorageClasses, Nodes).
    pub fn collection(&self) -> Option<String> {
        if CLUSTER_SCOPED.contains(&self.resource.as_str()) {
            return Some(format!("{}/{}", self.prefix, self.resource));
        }
        let ns = self.namespace.as_ref()?;
        Some(format!("{}/namespaces/{ns}/{}", self.prefix, self.resource))
    }

    /// The RBAC verb of a request on this target (kube-apiserver's RequestInfoFactory).
    pub fn verb(&self, method: &Method, query: &BTreeMap<String, String>) -> &'static str {
        let watch =
            self.legacy_watch || query.get("watch").is_some_and(|w| w == "true" || w == "1");
        match (method.as_str(), self.name.is_some()) {
            ("GET" | "HEAD", _) if watch => "watch",
            ("GET" | "HEAD", true) => "get",
            ("GET" | "HEAD", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "unknown",
        }
    }

    pub fn access(&self, verb: &str) -> Access {
        Access {
            verb: verb.to_string(),
            group: self.group.clone(),
            resource: self.resource.clone(),
            subresource: self.subresource.clone().unwrap_or_default(),
            namespace: self.namespace.clone().unwrap_or_default(),
            name: self.name.clone().unwrap_or_default(),
        }
    }
}

/// The resource (plural) of an owner reference's kind, for the kinds the tests own things by.
fn resource_of(kind: &str) -> Option<&'static str> {
    match kind {
        "KafkaCluster" => Some("kafkaclusters"),
        "KafkaTopic" => Some("kafkatopics"),
        "KafkaUser" => Some("kafkausers"),
        "StatefulSet" => Some("statefulsets"),
        _ => None,
    }
}

/// The checks OwnerReferencesPermissionEnforcement makes when `new` replaces `old` (`None`
/// on create): changing owner references needs `delete` on the object itself (except on
/// create), and each newly blocking owner reference needs `update` on the owner's
/// `finalizers` subresource.
pub fn owner_reference_checks(target: &Target, old: Option<&Value>, new: &Value) -> Vec<Access> {
    let refs = |o: Option<&Value>| -> Vec<Value> {
        o.and_then(|o| o["metadata"]["ownerReferences"].as_array().cloned())
            .unwrap_or_default()
    };
    let (before, after) = (refs(old), refs(Some(new)));
    if before == after {
        return Vec::new();
    }
    let mut checks = Vec::new();
    if old.is_some() {
        checks.push(Access {
            subresource: String::new(),
            ..target.access("delete")
        });
    }
    let blocking = |r: &Value| r["blockOwnerDeletion"] == json!(true);
    for r in after.iter().filter(|r| blocking(r)) {
        let was_blocking = before.iter().any(|b| b["uid"] == r["uid"] && blocking(b));
        if was_blocking {
            continue;
        }
        let api_version = r["apiVersion"].as_str().unwrap_or_default();
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let kind = r["kind"].as_str().unwrap_or_default();
        checks.push(Access {
            verb: "update".into(),
            group: group.into(),
            resource: resource_of(kind)
                .unwrap_or_else(|| panic!("owner kind {kind} unknown to the fake"))
                .into(),
            subresource: "finalizers".into(),
            namespace: target.namespace.clone().unwrap_or_default(),
            name: r["name"].as_str().unwrap_or_default().into(),
        });
    }
    checks
}

/// The check RBAC's escalation prevention makes when a ClusterRoleBinding is created or
/// changed (`pkg/registry/rbac/clusterrolebinding/policybased`): may the requester `bind` the
/// role it refers to? (Were it refused, the API server would instead require the requester to
/// hold every permission of the role itself; the operator holds `bind`, not `get nodes`.)
pub fn binding_checks(target: &Target, old: Option<&Value>, new: &Value) -> Vec<Access> {
    let unchanged = old.is_some_and(|o| {
        o["roleRef"] == new["roleRef"]
            && o["subjects"] == new["subjects"]
            && o["metadata"]["labels"] == new["metadata"]["labels"]
            && o["metadata"]["annotations"] == new["metadata"]["annotations"]
    });
    if target.resource != "clusterrolebindings" || unchanged {
        return Vec::new();
    }
    vec![Access {
        verb: "bind".into(),
        group: "rbac.authorization.k8s.io".into(),
        resource: "clusterroles".into(),
        subresource: String::new(),
        namespace: String::new(),
        name: new["roleRef"]["name"].as_str().unwrap_or_default().into(),
    }]
}

/// Which RBAC modes of the chart a scenario's requests must be allowed in.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// Requests inside the watched namespaces (and the operator's own, for its Lease): both
    /// the namespaced (Roles) and the cluster-wide (ClusterRole) mode must allow them.
    Namespaced,
    /// The operator watching every namespace: only the cluster-wide mode applies.
    AllNamespaces,
    /// Requests of a rack-aware broker pod's init container, with the brokers' ServiceAccount:
    /// the chart's broker-rack ClusterRole must allow them.
    Broker,
}

fn record_file(scenario: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rbac")
        .join(format!("{scenario}.json"))
}

fn render(scenario: &str, scope: Scope, accesses: &BTreeSet<Access>) -> String {
    let requests: Vec<Value> = accesses
        .iter()
        .map(|a| {
            json!({"verb": a.verb, "group": a.group, "resource": a.resource,
                   "subresource": a.subresource, "namespace": a.namespace, "name": a.name})
        })
        .collect();
    let scope = match scope {
        Scope::Namespaced => "namespaced",
        Scope::AllNamespaces => "all-namespaces",
        Scope::Broker => "broker",
    };
    let document = json!({"scenario": scenario, "scope": scope, "requests": requests});
    serde_json::to_string_pretty(&document).unwrap() + "\n"
}

/// Compares the authorization checks a scenario caused with its recorded file (or rewrites
/// the file when `KRAIT_RBAC_RECORD` is set).
pub fn check_recorded(scenario: &str, scope: Scope, accesses: &BTreeSet<Access>) {
    let path = record_file(scenario);
    let rendered = render(scenario, scope, accesses);
    if std::env::var_os("KRAIT_RBAC_RECORD").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rendered).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        recorded == rendered,
        "the API requests of scenario {scenario} differ from {}; if the change is intended, \
         re-record with KRAIT_RBAC_RECORD=1 cargo test -p krait-operator, and the RBAC \
         conformance test (tests/integration/test_rbac.py) checks the chart allows them.\n\
         now:\n{rendered}",
        path.display()
    );
}
