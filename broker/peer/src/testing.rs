//! Test support (feature `test-support`): a cluster CA that writes broker keystores naming
//! node ids, for tests of both ends of the cluster port.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair, SanType};

use crate::{ClusterTls, ClusterTransport};

/// A CA in a directory of the test's, and the files it writes there.
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
    dir: PathBuf,
    name: String,
}

impl TestCa {
    /// A new CA named `name`; its certificate is written to `<dir>/<name>.pem`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        Self {
            cert,
            key,
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    /// The CA certificate's file: a truststore.
    pub fn truststore(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.name))
    }

    /// A keystore file (key + certificate for localhost) naming `node` as
    /// `urn:krait:node:<id>`, or no node id when `None`.
    pub fn keystore(&self, node: Option<i32>) -> PathBuf {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        if let Some(id) = node {
            let uri = format!("urn:krait:node:{id}");
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let label = node.map_or("anonymous".to_string(), |id| format!("node{id}"));
        let path = self.dir.join(format!("{}-{label}.pem", self.name));
        std::fs::write(&path, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
        path
    }

    /// The cluster transport of a broker with a fresh certificate naming `node`.
    pub fn transport(&self, node: Option<i32>) -> ClusterTransport {
        ClusterTransport::Tls(Arc::new(
            ClusterTls::new(self.keystore(node), self.truststore()).unwrap(),
        ))
    }
}
