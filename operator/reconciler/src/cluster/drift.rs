//! Whether an object read back from the API server still holds everything the operator
//! applied. The server adds defaults and status, and canonicalizes quantities ("1000m" reads
//! back as "1"); none of that is drift. A changed or removed field is, and gets re-applied.
//! Pure: compares JSON values.

use serde_json::Value;

/// True when every field of `desired` is present in `observed` with an equal value: objects
/// may have extra keys, lists extra trailing items (e.g. added by another field manager),
/// and quantity strings compare by value.
pub fn contains(observed: &Value, desired: &Value) -> bool {
    match (observed, desired) {
        (Value::Object(o), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| o.get(k).is_some_and(|ov| contains(ov, dv))),
        (Value::Array(o), Value::Array(d)) => {
            o.len() >= d.len() && o.iter().zip(d).all(|(ov, dv)| contains(ov, dv))
        }
        (Value::String(o), Value::String(d)) => o == d || same_quantity(o, d),
        (o, d) => o == d,
    }
}

/// Two Kubernetes quantities with the same value ("1000m" and "1", "1024Mi" and "1Gi").
fn same_quantity(a: &str, b: &str) -> bool {
    match (quantity(a), quantity(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()),
        _ => false,
    }
}

/// A quantity's value, or `None` when the string is not one.
pub(crate) fn quantity(s: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| s.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((s, 1.0));
    let starts_like_a_number =
        number.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == '+');
    if !starts_like_a_number {
        return None;
    }
    number.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn server_defaults_and_status_are_not_drift() {
        let desired = json!({"spec": {"replicas": 3, "ports": [{"name": "kafka", "port": 9092}]}});
        let observed = json!({"spec": {"replicas": 3, "revisionHistoryLimit": 10,
            "ports": [{"name": "kafka", "port": 9092, "protocol": "TCP"}]}, "status": {"replicas": 3}});
        assert!(contains(&observed, &desired));
    }

    #[test]
    fn a_changed_or_removed_field_is_drift() {
        let desired = json!({"spec": {"replicas": 3, "image": "krait:1"}});
        assert!(!contains(
            &json!({"spec": {"replicas": 5, "image": "krait:1"}}),
            &desired
        ));
        assert!(!contains(&json!({"spec": {"replicas": 3}}), &desired));
        assert!(!contains(
            &json!({"spec": {"replicas": 3, "image": "krait:2"}}),
            &desired
        ));
    }

    #[test]
    fn lists_must_keep_the_applied_items_in_order() {
        let desired = json!({"containers": [{"name": "broker"}]});
        assert!(contains(
            &json!({"containers": [{"name": "broker"}, {"name": "sidecar"}]}),
            &desired
        ));
        assert!(!contains(
            &json!({"containers": [{"name": "sidecar"}, {"name": "broker"}]}),
            &desired
        ));
        assert!(!contains(&json!({"containers": []}), &desired));
    }

    #[test]
    fn canonicalized_quantities_are_equal() {
        assert!(contains(&json!({"cpu": "1"}), &json!({"cpu": "1000m"})));
        assert!(contains(
            &json!({"memory": "1Gi"}),
            &json!({"memory": "1024Mi"})
        ));
        assert!(contains(&json!({"cpu": "500m"}), &json!({"cpu": "0.5"})));
        assert!(!contains(&json!({"cpu": "2"}), &json!({"cpu": "1000m"})));
        assert!(!contains(&json!({"name": "Mi"}), &json!({"name": "Gi"})));
    }
}
