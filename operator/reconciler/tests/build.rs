//! Validate and build for `KafkaCluster`, from YAML fixture resources: the objects a cluster
//! owns, and the condition an invalid spec gets.

use crate::common::pod_security;

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use krait_crd::KafkaCluster;
use krait_operator::cluster::build::{DesiredObjects, Shape, build, hash_of};
use krait_operator::cluster::validate::{InvalidSpec, ValidatedCluster, validate};
use krait_operator::names::{CONFIG_HASH_ANNOTATION, POD_INDEX_LABEL};

fn fixture(name: &str) -> KafkaCluster {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every valid fixture's name.
fn valid_fixtures() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && !n.starts_with("invalid-"))
        .collect();
    names.sort();
    names
}

fn built(name: &str) -> (ValidatedCluster, DesiredObjects) {
    let validated = validate(&fixture(name)).expect("fixture is valid");
    let desired = build(&validated, &Shape::initial(&validated));
    (validated, desired)
}

fn broker(d: &DesiredObjects) -> &Container {
    &d.statefulset
        .spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
}

fn service<'a>(d: &'a DesiredObjects, name: &str) -> &'a Service {
    d.services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no service {name}"))
}

#[test]
fn every_object_is_owned_by_the_cluster_and_labelled() {
    let (_, d) = built("minimal.yaml");
    let metas = [
        &d.service_account.metadata,
        &d.config_map.metadata,
        &d.statefulset.metadata,
        &d.pdb.metadata,
    ]
    .into_iter()
    .chain(d.services.iter().map(|s| &s.metadata));
    for meta in metas {
        assert_eq!(meta.namespace.as_deref(), Some("kafka"));
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("KafkaCluster", "main", Some(true))
        );
        assert_eq!(owner.uid, "7f0c1d2e-0000-4000-8000-000000000001");
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/managed-by"], "krait-operator");
        assert_eq!(labels["app.kubernetes.io/instance"], "main");
        assert!(
            meta.annotations
                .as_ref()
                .unwrap()
                .contains_key("krait.dev/desired-hash")
        );
    }
}

#[test]
fn statefulset_takes_broker_ids_from_the_ordinal_and_advertises_dns_names() {
    let (_, d) = built("minimal.yaml");
    let spec = &d.statefulset.spec;
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.service_name.as_deref(), Some("main-brokers"));
    assert_eq!(spec.pod_management_policy.as_deref(), Some("Parallel"));
    let c = broker(&d);
    let node_id = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == "KRAIT_NODE_ID")
        .unwrap();
    let path = &node_id
        .value_from
        .as_ref()
        .unwrap()
        .field_ref
        .as_ref()
        .unwrap()
        .field_path;
    assert_eq!(path, &format!("metadata.labels['{POD_INDEX_LABEL}']"));
    let args = c.args.as_ref().unwrap();
    // The default listener: TLS with SCRAM on 9094, in Kafka's keys.
    assert!(args.contains(&"--advertise=$(POD_NAME).main-brokers.kafka.svc:9094".to_string()));
    assert!(args.contains(&"--listen=0.0.0.0:9094".to_string()));
    for key in [
        "--override=listeners=TLS://0.0.0.0:9094",
        "--override=advertised.listeners=TLS://$(POD_NAME).main-brokers.kafka.svc:9094",
        "--override=listener.security.protocol.map=TLS:SASL_SSL",
        "--override=listener.name.tls.sasl.enabled.mechanisms=SCRAM-SHA-512",
        "--override=ssl.keystore.location=/etc/krait/cluster-tls/$(POD_NAME).pem",
    ] {
        assert!(args.contains(&key.to_string()), "{key} in {args:?}");
    }
    let add_scram = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == "KRAIT_ADD_SCRAM")
        .expect("the operator's user, from its Secret");
    let from = add_scram.value_from.as_ref().unwrap();
    let key = from.secret_key_ref.as_ref().unwrap();
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("main-operator-credentials", "add-scram")
    );
    assert!(args.contains(&"--http-listen=0.0.0.0:9644".to_string()));
    assert!(
        args.contains(
            &"--voters=0@main-0.main-brokers.kafka.svc:9093,1@main-1.main-brokers.kafka.svc:9093,\
          2@main-2.main-brokers.kafka.svc:9093"
                .to_string()
        )
    );
    assert!(!args.iter().any(|a| a.starts_with("--rack")));
}

#[test]
fn probes_ask_the_broker_itself() {
    let (_, d) = built("minimal.yaml");
    let c = broker(&d);
    let get = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        let h = p.as_ref().unwrap().http_get.as_ref().unwrap();
        (h.path.clone().unwrap(), h.port.clone())
    };
    let http = IntOrString::String("http".into());
    assert_eq!(get(&c.readiness_probe), ("/readyz".into(), http.clone()));
    assert_eq!(get(&c.liveness_probe), ("/healthz".into(), http.clone()));
    let port = c
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .unwrap();
    assert_eq!(port.container_port, 9644);
}

#[test]
fn persistent_storage_is_a_claim_per_broker() {
    let (_, d) = built("full.yaml");
    let claims = d.statefulset.spec.volume_claim_templates.as_ref().unwrap();
    let claim = claims[0].spec.as_ref().unwrap();
    assert_eq!(claim.storage_class_name.as_deref(), Some("fast-ssd"));
    let size = &claim.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"];
    assert_eq!(size.0, "100Gi");
    let mount = &broker(&d).volume_mounts.as_ref().unwrap()[0];
    assert_eq!(
        (mount.name.as_str(), mount.mount_path.as_str()),
        ("data", "/var/lib/krait")
    );
}

#[test]
fn ephemeral_storage_is_an_empty_dir() {
    let (_, d) = built("ephemeral.yaml");
    let spec = &d.statefulset.spec;
    assert!(spec.volume_claim_templates.is_none());
    let volumes = spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .as_ref()
        .unwrap();
    let data = volumes.iter().find(|v| v.name == "data").unwrap();
    assert!(data.empty_dir.is_some());
}

#[test]
fn services_give_per_broker_dns_and_a_bootstrap_address() {
    let (_, d) = built("minimal.yaml");
    assert_eq!(
        d.services.len(),
        2,
        "no external listener: no external services"
    );
    let headless = service(&d, "main-brokers").spec.as_ref().unwrap();
    assert_eq!(headless.cluster_ip.as_deref(), Some("None"));
    assert_eq!(headless.publish_not_ready_addresses, Some(true));
    let bootstrap = service(&d, "main-bootstrap").spec.as_ref().unwrap();
    assert_eq!(bootstrap.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(bootstrap.ports.as_ref().unwrap()[0].port, 9094);
    assert_eq!(
        bootstrap.selector.as_ref().unwrap()["app.kubernetes.io/component"],
        "broker"
    );
}

#[test]
fn external_listener_gets_one_service_per_broker() {
    let (_, d) = built("full.yaml");
    for id in 0..3 {
        let s = service(&d, &format!("edge-{id}-external"))
            .spec
            .as_ref()
            .unwrap();
        assert_eq!(s.type_.as_deref(), Some("NodePort"));
        assert_eq!(
            s.selector.as_ref().unwrap()[POD_INDEX_LABEL],
            id.to_string()
        );
        let port = &s.ports.as_ref().unwrap()[0];
        assert_eq!((port.port, port.node_port), (9094, Some(31090 + id)));
    }
    let args = broker(&d).args.as_ref().unwrap();
    assert!(args.contains(&"--external-listen=0.0.0.0:9094".to_string()));
    // Plaintext listeners, the internal one named after the broker's default: the command line
    // clusters had before listeners were configurable, without Kafka keys.
    assert!(args.contains(&"--listen=0.0.0.0:9092".to_string()));
    assert!(
        !args.iter().any(|a| a.starts_with("--override")),
        "{args:?}"
    );
    assert!(
        args.contains(
            &"--external-advertised-addresses=kafka-0.example.com:31090,kafka-1.example.com:31091,\
          kafka-2.example.com:31092"
                .to_string()
        )
    );
}

#[test]
fn rack_awareness_spreads_pods_and_tells_the_broker_its_rack() {
    let (_, d) = built("full.yaml");
    let pod = d.statefulset.spec.template.spec.as_ref().unwrap();
    let spread = &pod.topology_spread_constraints.as_ref().unwrap()[0];
    assert_eq!(spread.topology_key, "topology.kubernetes.io/zone");
    assert_eq!(spread.max_skew, 1);
    let c = broker(&d);
    let args = c.args.as_ref().unwrap();
    assert!(args.contains(&"--rack-file=/var/run/krait/rack".to_string()));
    assert!(!args.iter().any(|a| a.starts_with("--rack=")));
    // Not from a pod label: the kubelet copies none before Kubernetes 1.33.
    assert!(
        !c.env
            .as_ref()
            .unwrap()
            .iter()
            .any(|e| e.name == "KRAIT_RACK")
    );
    let rack_mount = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == "rack")
        .expect("the broker mounts the rack volume");
    assert_eq!(
        (rack_mount.mount_path.as_str(), rack_mount.read_only),
        ("/var/run/krait", Some(true))
    );
}

#[test]
fn the_rack_comes_from_the_nodes_label_through_an_init_container() {
    let (_, d) = built("full.yaml");
    let pod = d.statefulset.spec.template.spec.as_ref().unwrap();
    let [init] = pod.init_containers.as_deref().unwrap() else {
        panic!("one init container: {:?}", pod.init_containers);
    };
    assert_eq!(init.name, "rack");
    assert_eq!(
        init.image.as_deref(),
        Some("ghcr.io/krait-dev/krait-operator:0.1.0"),
        "the operator's own image"
    );
    assert_eq!(
        init.command.as_deref(),
        Some(&["krait-operator".to_string()][..])
    );
    assert_eq!(
        init.args.as_deref().unwrap(),
        [
            "rack",
            "--node=$(NODE_NAME)",
            "--topology-key=topology.kubernetes.io/zone",
            "--out=/var/run/krait/rack"
        ]
    );
    let node_name = &init.env.as_ref().unwrap()[0];
    assert_eq!(node_name.name, "NODE_NAME");
    assert_eq!(
        node_name
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "spec.nodeName"
    );
    // Same restricted context as the broker.
    assert_eq!(init.security_context, broker(&d).security_context);
    // The API token is projected into the init container alone; the pod automounts none.
    assert_eq!(pod.automount_service_account_token, Some(false));
    let mounts: Vec<(&str, &str)> = init
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    assert_eq!(
        mounts,
        [
            ("rack", "/var/run/krait"),
            (
                "kube-api-access",
                "/var/run/secrets/kubernetes.io/serviceaccount"
            )
        ]
    );
    assert!(
        !broker(&d)
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.name == "kube-api-access")
    );
    let volumes = pod.volumes.as_ref().unwrap();
    let access = volumes
        .iter()
        .find(|v| v.name == "kube-api-access")
        .unwrap();
    let sources = access.projected.as_ref().unwrap().sources.as_ref().unwrap();
    assert_eq!(
        sources[0].service_account_token.as_ref().unwrap().path,
        "token"
    );
    assert_eq!(
        sources[1].config_map.as_ref().unwrap().name,
        "kube-root-ca.crt"
    );
    // The binding that lets it read the Node: the cluster's ServiceAccount, the chart's role.
    let binding = d.rack_binding.as_ref().expect("a rack binding");
    assert_eq!(
        binding.metadata.name.as_deref(),
        Some("krait-streaming-edge-rack")
    );
    assert_eq!(binding.role_ref.name, "krait-operator-broker-rack");
    let subject = &binding.subjects.as_ref().unwrap()[0];
    assert_eq!(
        (
            subject.kind.as_str(),
            subject.name.as_str(),
            subject.namespace.as_deref()
        ),
        ("ServiceAccount", "edge", Some("streaming"))
    );
    assert!(
        binding.metadata.owner_references.is_none(),
        "cluster-scoped: no namespaced owner"
    );
}

#[test]
fn without_rack_there_is_no_init_container_no_token_and_no_binding() {
    let (_, d) = built("minimal.yaml");
    let pod = d.statefulset.spec.template.spec.as_ref().unwrap();
    assert!(pod.init_containers.is_none());
    assert!(
        !pod.volumes
            .iter()
            .flatten()
            .any(|v| v.name == "kube-api-access" || v.name == "rack")
    );
    assert!(d.rack_binding.is_none());
}

#[test]
fn pod_overrides_are_merged_but_selector_labels_win() {
    let (_, d) = built("full.yaml");
    let template = &d.statefulset.spec.template;
    let labels = template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
    assert_eq!(labels["team"], "payments");
    assert_eq!(labels["app.kubernetes.io/instance"], "edge");
    let annotations = template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap();
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    let pod = template.spec.as_ref().unwrap();
    assert_eq!(pod.priority_class_name.as_deref(), Some("kafka-critical"));
    assert_eq!(pod.node_selector.as_ref().unwrap()["pool"], "kafka");
    assert_eq!(
        pod.tolerations.as_ref().unwrap()[0].key.as_deref(),
        Some("dedicated")
    );
    let affinity = pod.affinity.as_ref().unwrap();
    assert!(
        affinity.node_affinity.is_some(),
        "the user's affinity replaces the default"
    );
    assert!(affinity.pod_anti_affinity.is_none());
    let c = broker(&d);
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(
        pod.image_pull_secrets.as_ref().unwrap()[0].name,
        "registry-creds"
    );
    assert_eq!(
        c.resources.as_ref().unwrap().requests.as_ref().unwrap()["memory"].0,
        "4Gi"
    );
}

#[test]
fn default_affinity_prefers_one_broker_per_node() {
    let (_, d) = built("minimal.yaml");
    let pod = d.statefulset.spec.template.spec.as_ref().unwrap();
    let anti = pod
        .affinity
        .as_ref()
        .unwrap()
        .pod_anti_affinity
        .as_ref()
        .unwrap();
    let term = &anti
        .preferred_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        term.pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
}

#[test]
fn broker_config_becomes_environment_and_properties() {
    let (_, d) = built("full.yaml");
    let data = d.config_map.data.as_ref().unwrap();
    assert_eq!(data["KRAIT_RETENTION_MS"], "86400000");
    assert_eq!(data["KRAIT_DEFAULT_PARTITIONS"], "6");
    assert_eq!(data["KRAIT_DEFAULT_REPLICATION_FACTOR"], "3");
    assert_eq!(data["KRAIT_MIN_INSYNC_REPLICAS"], "2");
    let props = &data["server.properties"];
    assert!(props.contains("log.retention.ms=86400000\n"));
    assert!(props.contains("min.insync.replicas=2\n"));
    let env_from = &broker(&d).env_from.as_ref().unwrap()[0];
    assert_eq!(
        env_from.config_map_ref.as_ref().unwrap().name,
        "edge-config"
    );
}

#[test]
fn the_broker_gets_half_its_memory_limit_as_its_budget_unless_the_config_says_otherwise() {
    let (_, d) = built("full.yaml");
    let data = d.config_map.data.as_ref().unwrap();
    assert_eq!(data["KRAIT_MEMORY_MB"], "2048", "4Gi limit");
    assert!(
        !data.contains_key("KRAIT_STORAGE_MEMORY_MB"),
        "RocksDB takes its share of the budget"
    );
    let (_, d) = built("minimal.yaml");
    assert!(
        !d.config_map
            .data
            .as_ref()
            .unwrap()
            .contains_key("KRAIT_MEMORY_MB"),
        "no limit: the broker's default"
    );
    let mut set = fixture("full.yaml");
    set.spec.config.insert("memory.mb".into(), "300".into());
    set.spec
        .config
        .insert("storage.memory.mb".into(), "200".into());
    let v = validate(&set).unwrap();
    let d = build(&v, &Shape::initial(&v));
    let data = d.config_map.data.as_ref().unwrap();
    assert_eq!(data["KRAIT_MEMORY_MB"], "300");
    assert_eq!(data["KRAIT_STORAGE_MEMORY_MB"], "200");
    assert!(data["server.properties"].contains("memory.mb=300\n"));
    assert!(data["server.properties"].contains("storage.memory.mb=200\n"));
    for (key, value) in [("storage.memory.mb", "8"), ("memory.mb", "32")] {
        let mut bad = fixture("full.yaml");
        bad.spec.config.insert(key.into(), value.into());
        assert!(
            matches!(
                validate(&bad),
                Err(InvalidSpec::BadConfigValue { key: k, .. }) if k == key
            ),
            "{key}={value}"
        );
    }
}

#[test]
fn pdb_allows_one_broker_down() {
    let (_, d) = built("minimal.yaml");
    let spec = d.pdb.spec.as_ref().unwrap();
    assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
    // One broker down does not stop a broker that is not Ready from being evicted.
    assert_eq!(
        spec.unhealthy_pod_eviction_policy.as_deref(),
        Some("AlwaysAllow")
    );
    assert_eq!(
        spec.selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap()["app.kubernetes.io/instance"],
        "main"
    );
    assert_eq!(
        d.service_account.automount_service_account_token,
        Some(false)
    );
}

#[test]
fn build_is_deterministic_and_hashes_follow_the_spec() {
    let (v, first) = built("full.yaml");
    assert_eq!(build(&v, &Shape::initial(&v)), first);
    let mut changed = fixture("full.yaml");
    changed
        .spec
        .config
        .insert("log.retention.ms".into(), "1000".into());
    let second = {
        let v = validate(&changed).unwrap();
        build(&v, &Shape::initial(&v))
    };
    assert_ne!(hash_of(&first.config_map), hash_of(&second.config_map));
    let template_hash = |d: &DesiredObjects| {
        let t = &d.statefulset.spec.template;
        t.metadata.as_ref().unwrap().annotations.as_ref().unwrap()[CONFIG_HASH_ANNOTATION].clone()
    };
    assert_ne!(
        template_hash(&first),
        template_hash(&second),
        "a config change rolls the brokers"
    );
    assert_eq!(hash_of(&first.pdb), hash_of(&second.pdb));
    assert_eq!(hash_of(&first.services[0]), hash_of(&second.services[0]));
}

#[test]
fn invalid_specs_are_refused_with_the_reason() {
    type Expected = fn(&InvalidSpec) -> bool;
    let cases: &[(&str, Expected)] = &[
        ("invalid-no-storage-size.yaml", |e| {
            *e == InvalidSpec::StorageSizeMissing
        }),
        (
            "invalid-unknown-config.yaml",
            |e| matches!(e, InvalidSpec::UnknownConfig(k, _) if k == "log.segment.bytes"),
        ),
        ("invalid-replication-factor.yaml", |e| {
            *e == InvalidSpec::ReplicationFactorAboveReplicas {
                factor: 3,
                replicas: 2,
            }
        }),
        ("invalid-min-isr.yaml", |e| {
            *e == InvalidSpec::MinIsrAboveReplicationFactor {
                min_isr: 3,
                factor: 2,
            }
        }),
        ("invalid-external-addresses.yaml", |e| {
            *e == InvalidSpec::AdvertisedAddressCount {
                got: 2,
                replicas: 3,
            }
        }),
        (
            "invalid-config-value.yaml",
            |e| matches!(e, InvalidSpec::BadConfigValue { key, .. } if key == "auto.create.topics.enable"),
        ),
        ("invalid-ephemeral-with-size.yaml", |e| {
            *e == InvalidSpec::EphemeralWithClaim
        }),
    ];
    for (file, expected) in cases {
        let err = validate(&fixture(file)).expect_err(file);
        assert!(expected(&err), "{file}: unexpected {err:?}");
    }
}

#[test]
fn a_spec_field_and_the_same_config_key_together_are_refused() {
    let mut c = fixture("full.yaml");
    c.spec
        .config
        .insert("min.insync.replicas".into(), "2".into());
    assert_eq!(
        validate(&c).unwrap_err(),
        InvalidSpec::ConfigDuplicatesField("minInsyncReplicas")
    );
}

#[test]
fn every_broker_pod_passes_the_restricted_pod_security_standard() {
    let fixtures = valid_fixtures();
    assert!(fixtures.len() >= 3, "{fixtures:?}");
    for name in fixtures {
        let (_, d) = built(&name);
        let pod = serde_json::to_value(d.statefulset.spec.template.spec.as_ref().unwrap()).unwrap();
        assert_eq!(
            pod_security::violations(&pod),
            Vec::<String>::new(),
            "{name}"
        );
        if name == "full.yaml" {
            // The rack-aware fixture: its init container is checked as well.
            assert_eq!(pod["initContainers"][0]["name"], "rack", "{name}");
        }
        let context = &pod["securityContext"];
        assert_eq!(context["fsGroupChangePolicy"], "OnRootMismatch", "{name}");
        assert_eq!(
            context["seccompProfile"]["type"], "RuntimeDefault",
            "{name}"
        );
    }
}

#[test]
fn brokers_request_cpu_and_memory_unless_the_spec_sets_them() {
    let (_, d) = built("minimal.yaml");
    let requests = broker(&d).resources.clone().unwrap().requests.unwrap();
    assert_eq!(
        (requests["cpu"].0.as_str(), requests["memory"].0.as_str()),
        ("500m", "1Gi")
    );
    // full.yaml requests cpu 2 and memory 4Gi: kept as given.
    let (_, d) = built("full.yaml");
    let resources = broker(&d).resources.clone().unwrap();
    let requests = resources.requests.unwrap();
    assert_eq!(
        (requests["cpu"].0.as_str(), requests["memory"].0.as_str()),
        ("2", "4Gi")
    );
    // A limit alone is what Kubernetes requests: no default request may exceed it.
    let mut cluster = fixture("minimal.yaml");
    cluster.spec.resources = Some(
        serde_json::from_value(serde_json::json!(
            {"limits": {"memory": "512Mi"}}
        ))
        .unwrap(),
    );
    let validated = validate(&cluster).unwrap();
    let d = build(&validated, &Shape::initial(&validated));
    let requests = broker(&d).resources.clone().unwrap().requests.unwrap();
    assert!(!requests.contains_key("memory"), "{requests:?}");
    assert_eq!(requests["cpu"].0, "500m");
}
