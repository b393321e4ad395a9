//! `kubectl get` answers "is it healthy and what is it doing": the printer columns each CRD
//! declares, and that every column's JSONPath names a field the CRD's schema has (a misspelt
//! path prints an empty column, which no API server refuses).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, JSONSchemaProps,
    JSONSchemaPropsOrArray,
};
use krait_crd::{KafkaCluster, KafkaTopic};
use kube::CustomResourceExt;

fn columns(crd: &CustomResourceDefinition) -> Vec<CustomResourceColumnDefinition> {
    crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default()
}

fn names(crd: &CustomResourceDefinition, priority: i32) -> Vec<String> {
    columns(crd)
        .into_iter()
        .filter(|c| c.priority.unwrap_or(0) == priority)
        .map(|c| c.name)
        .collect()
}

/// A JSONPath as (field, the key of a `[?(@.key=="value")]` filter after it) steps.
fn steps(path: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut steps = Vec::new();
    let mut rest = path.strip_prefix('.')?;
    while !rest.is_empty() {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let field = rest[..end].to_string();
        rest = &rest[end..];
        let mut filter = None;
        if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']')?;
            let key = after[..close].strip_prefix("?(@.")?.split("==").next()?;
            filter = Some(key.to_string());
            rest = &after[close + 1..];
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
        steps.push((field, filter));
    }
    Some(steps)
}

/// The schema of the field a column's JSONPath reaches: fields through properties, a filter
/// through an array's items, whose filtered field must exist.
fn resolve<'a>(schema: &'a JSONSchemaProps, path: &str) -> Option<&'a JSONSchemaProps> {
    let mut node = schema;
    for (field, filter) in steps(path)? {
        node = node.properties.as_ref()?.get(&field)?;
        if let Some(key) = filter {
            node = match node.items.as_ref()? {
                JSONSchemaPropsOrArray::Schema(item) => item,
                JSONSchemaPropsOrArray::Schemas(_) => return None,
            };
            node.properties.as_ref()?.get(&key)?;
        }
    }
    Some(node)
}

fn every_column_resolves(crd: &CustomResourceDefinition) {
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .unwrap();
    for column in columns(crd) {
        if column.json_path == ".metadata.creationTimestamp" {
            continue;
        }
        assert!(
            resolve(schema, &column.json_path).is_some(),
            "{}: column {} reads {}, which the schema does not have",
            crd.spec.names.kind,
            column.name,
            column.json_path
        );
    }
}

#[test]
fn kafka_clusters_show_readiness_brokers_ready_of_desired_what_is_happening_and_the_image() {
    let crd = KafkaCluster::crd();
    assert_eq!(
        names(&crd, 0),
        ["Ready", "Brokers", "Progressing", "Image", "Age"]
    );
    assert_eq!(names(&crd, 1), ["Degraded", "Bootstrap"]);
    every_column_resolves(&crd);
}

#[test]
fn kafka_topics_show_partitions_replication_factor_and_why_not_ready() {
    let crd = KafkaTopic::crd();
    assert_eq!(
        names(&crd, 0),
        [
            "Cluster",
            "Topic",
            "Partitions",
            "RF",
            "Ready",
            "Reason",
            "Age"
        ]
    );
    every_column_resolves(&crd);
}

#[test]
fn a_misspelt_column_path_is_caught() {
    let crd = KafkaCluster::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .unwrap();
    assert!(resolve(schema, ".status.brokersReady").is_some());
    assert!(resolve(schema, ".status.brokerReady").is_none());
    assert!(resolve(schema, ".status.conditions[?(@.type==\"Ready\")].reason").is_some());
    assert!(resolve(schema, ".status.conditions[?(@.kind==\"Ready\")].reason").is_none());
}
