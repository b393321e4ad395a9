//! The "restricted" Pod Security Standard (which includes "baseline"), as the PodSecurity
//! admission controller enforces it at its latest version, checked on a pod spec in JSON:
//! <https://kubernetes.io/docs/concepts/security/pod-security-standards/>. Returns every
//! violation, named after the field, so a test says what a real namespace labelled
//! `pod-security.kubernetes.io/enforce: restricted` would refuse.

use serde_json::Value;

/// Volume types the restricted profile allows.
const RESTRICTED_VOLUMES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];
/// Sysctls the baseline profile allows.
const SAFE_SYSCTLS: [&str; 9] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
];
const SELINUX_TYPES: [&str; 5] = [
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn truthy(v: &Value) -> bool {
    v.as_bool() == Some(true)
}

fn containers(pod: &Value) -> Vec<(String, &Value)> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|kind| {
            pod[*kind]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |c| (format!("{kind}[{}]", c["name"].as_str().unwrap_or("?")), c))
        })
        .collect()
}

/// A container's setting, or the pod's when the container leaves it unset.
fn effective<'a>(pod: &'a Value, container: &'a Value, field: &str) -> &'a Value {
    let own = &container["securityContext"][field];
    if own.is_null() {
        &pod["securityContext"][field]
    } else {
        own
    }
}

/// Every way `pod` (a PodSpec) breaks the restricted profile; empty when it passes.
pub fn violations(pod: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut fail = |rule: &str, at: &str| found.push(format!("{rule}: {at}"));
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if truthy(&pod[field]) {
            fail("host namespaces", field);
        }
    }
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        let name = volume["name"].as_str().unwrap_or("?");
        let kinds: Vec<&String> = volume
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "name")
            .collect();
        for kind in kinds {
            if !RESTRICTED_VOLUMES.contains(&kind.as_str()) {
                fail("volume types", &format!("volumes[{name}].{kind}"));
            }
        }
    }
    for sysctl in pod["securityContext"]["sysctls"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = sysctl["name"].as_str().unwrap_or("?");
        if !SAFE_SYSCTLS.contains(&name) {
            fail("sysctls", name);
        }
    }
    check_contexts("securityContext", &pod["securityContext"], &mut fail);
    for (at, c) in containers(pod) {
        let sc = &c["securityContext"];
        check_contexts(&format!("{at}.securityContext"), sc, &mut fail);
        if truthy(&sc["privileged"]) {
            fail("privileged containers", &at);
        }
        if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
            fail(
                "privilege escalation",
                &format!("{at}.allowPrivilegeEscalation"),
            );
        }
        let drop = sc["capabilities"]["drop"].as_array();
        if !drop.is_some_and(|d| d.iter().any(|c| c == "ALL")) {
            fail("capabilities", &format!("{at} must drop ALL"));
        }
        for add in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            if add != "NET_BIND_SERVICE" {
                fail("capabilities", &format!("{at} adds {add}"));
            }
        }
        if !sc["procMount"].is_null() && sc["procMount"] != "Default" {
            fail("/proc mount type", &at);
        }
        for port in c["ports"].as_array().into_iter().flatten() {
            if port["hostPort"].as_i64().unwrap_or(0) != 0 {
                fail("host ports", &at);
            }
        }
        if effective(pod, c, "runAsNonRoot").as_bool() != Some(true) {
            fail("running as non-root", &format!("{at}.runAsNonRoot"));
        }
        if effective(pod, c, "runAsUser").as_i64() == Some(0) {
            fail("running as non-root user", &format!("{at}.runAsUser"));
        }
        let seccomp = effective(pod, c, "seccompProfile")["type"].as_str();
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            fail("seccomp", &format!("{at}.seccompProfile.type"));
        }
    }
    found
}

/// The rules a pod-level and a container-level security context share.
fn check_contexts(at: &str, sc: &Value, fail: &mut impl FnMut(&str, &str)) {
    if truthy(&sc["windowsOptions"]["hostProcess"]) {
        fail("HostProcess", at);
    }
    if sc["seccompProfile"]["type"] == "Unconfined" {
        fail("seccomp", &format!("{at}.seccompProfile.type"));
    }
    if sc["runAsUser"].as_i64() == Some(0) {
        fail("running as non-root user", &format!("{at}.runAsUser"));
    }
    let selinux = &sc["seLinuxOptions"];
    if !SELINUX_TYPES.contains(&selinux["type"].as_str().unwrap_or("")) {
        fail("SELinux", &format!("{at}.seLinuxOptions.type"));
    }
    if !selinux["user"].is_null() || !selinux["role"].is_null() {
        fail("SELinux", &format!("{at}.seLinuxOptions user/role"));
    }
    let apparmor = sc["appArmorProfile"]["type"]
        .as_str()
        .unwrap_or("RuntimeDefault");
    if !matches!(apparmor, "RuntimeDefault" | "Localhost") {
        fail("AppArmor", &format!("{at}.appArmorProfile.type"));
    }
}
