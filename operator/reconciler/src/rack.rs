//! `krait-operator rack`: the init container of rack-aware broker pods. Reads the topology
//! label (`spec.rack.topologyKey`) of the Node the pod was scheduled on, through the API server
//! with the pod's own ServiceAccount, and writes it to the file the broker's `--rack-file`
//! reads. The kubelet copies no node label onto pods before Kubernetes 1.33 (and only the
//! `topology.kubernetes.io/*` ones after), so the Node itself is the one source that works on
//! every version, as Strimzi's and Redpanda's init steps read it.
//!
//! A missing label is an error, not an empty rack: the pod stays in `Init` with the reason in
//! its log, rather than a broker starting without a rack and replicas silently ignoring zones.
//! Holds no state and decides nothing else.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};

/// Why the rack could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RackError {
    #[error("connecting to the Kubernetes API with the pod's service account: {0}")]
    Client(kube::Error),
    #[error(
        "reading Node {node}: forbidden; the broker's ServiceAccount needs `get` on nodes, which \
         the operator grants through a ClusterRoleBinding to the chart's broker-rack ClusterRole \
         (is that ClusterRole installed?): {source}"
    )]
    Forbidden { node: String, source: kube::Error },
    #[error("reading Node {node}: {source}")]
    Read { node: String, source: kube::Error },
    #[error(
        "Node {node} has no label {key}: label the node (kubectl label node {node} {key}=<rack>) \
         or set spec.rack.topologyKey to a label every broker node carries"
    )]
    MissingLabel { node: String, key: String },
    #[error("writing the rack to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The value of label `key` on Node `node`.
pub async fn node_label(client: Client, node: &str, key: &str) -> Result<String, RackError> {
    let nodes: Api<Node> = Api::all(client);
    let found = nodes.get(node).await.map_err(|source| match &source {
        kube::Error::Api(e) if e.code == 403 => RackError::Forbidden {
            node: node.into(),
            source,
        },
        _ => RackError::Read {
            node: node.into(),
            source,
        },
    })?;
    found
        .metadata
        .labels
        .and_then(|labels| labels.get(key).cloned())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| RackError::MissingLabel {
            node: node.into(),
            key: key.into(),
        })
}

/// Writes `rack` to `path` whole or not at all (a temporary file renamed over it), so a broker
/// never reads half a rack.
pub fn write_rack(path: &Path, rack: &str) -> Result<(), RackError> {
    let failed = |source| RackError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, format!("{rack}\n")).map_err(failed)?;
    std::fs::rename(&partial, path).map_err(failed)
}

/// Reads the rack of `node` and writes it to `out`; returns it.
pub async fn write_node_rack(
    client: Client,
    node: &str,
    key: &str,
    out: &Path,
) -> Result<String, RackError> {
    let rack = node_label(client, node, key).await?;
    write_rack(out, &rack)?;
    Ok(rack)
}

/// [`write_node_rack`] with the pod's own credentials (in-cluster config).
pub async fn write_own_node_rack(node: &str, key: &str, out: &Path) -> Result<String, RackError> {
    let client = Client::try_default().await.map_err(RackError::Client)?;
    write_node_rack(client, node, key, out).await
}
