//! `krait acl`: add, list and remove ACLs (CreateAcls, DescribeAcls, DeleteAcls through
//! krait-admin), with kafka-acls.sh's flag names where they fit.

use anyhow::bail;
use clap::{ArgGroup, Args, Subcommand};
use krait_acl::{
    AclBinding, AclBindingFilter, CLUSTER_RESOURCE_NAME, Operation, PatternType, Permission,
    ResourceType, WILDCARD_HOST,
};
use serde::Serialize;

use crate::client::Global;
use crate::output::{Table, print};

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Add ACLs: each principal gets each operation on the resource.
    Add(AddArgs),
    /// List the ACLs the filters select (every ACL without filters).
    List(FilterArgs),
    /// Remove the ACLs the filters select and print them.
    Remove(FilterArgs),
}

/// The resource an ACL names: at most one of these.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("resource").args(["topic", "group", "cluster", "transactional_id"])))]
pub struct ResourceArgs {
    /// A topic (`*` for every topic).
    #[arg(long)]
    topic: Option<String>,
    /// A consumer group (`*` for every group).
    #[arg(long)]
    group: Option<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// A transactional id (`*` for every one).
    #[arg(long)]
    transactional_id: Option<String>,
}

impl ResourceArgs {
    /// The resource type and name given, if any.
    fn resource(&self) -> Option<(ResourceType, String)> {
        if let Some(t) = &self.topic {
            Some((ResourceType::Topic, t.clone()))
        } else if let Some(g) = &self.group {
            Some((ResourceType::Group, g.clone()))
        } else if let Some(x) = &self.transactional_id {
            Some((ResourceType::TransactionalId, x.clone()))
        } else if self.cluster {
            Some((ResourceType::Cluster, CLUSTER_RESOURCE_NAME.to_string()))
        } else {
            None
        }
    }
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("principals").required(true).multiple(true).args(["allow", "deny"])))]
pub struct AddArgs {
    /// A principal to allow, e.g. User:alice or User:* (repeatable).
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    allow: Vec<String>,
    /// A principal to deny (repeatable); DENY wins over ALLOW.
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    deny: Vec<String>,
    /// An operation: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION,
    /// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE or ALL (repeatable).
    #[arg(long = "operation", required = true, value_parser = parse_operation)]
    operations: Vec<Operation>,
    #[command(flatten)]
    resource: ResourceArgs,
    /// How the resource name is read: literal (the name, or `*`) or prefixed.
    #[arg(long, default_value = "literal", value_parser = parse_pattern_type)]
    resource_pattern_type: PatternType,
    /// The client address the ACLs apply to (default: any host).
    #[arg(long, default_value = WILDCARD_HOST)]
    host: String,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    #[command(flatten)]
    resource: ResourceArgs,
    /// any (names compared exactly, the default), match (every pattern that applies to the
    /// named resource), literal or prefixed.
    #[arg(long, default_value = "any", value_parser = parse_pattern_type)]
    resource_pattern_type: PatternType,
    /// Only the ACLs of this principal.
    #[arg(long)]
    principal: Option<String>,
    /// Only the ACLs of this operation.
    #[arg(long, value_parser = parse_operation)]
    operation: Option<Operation>,
    /// Only ALLOW or only DENY ACLs.
    #[arg(long, value_parser = parse_permission)]
    permission: Option<Permission>,
    /// Only the ACLs of this host.
    #[arg(long)]
    host: Option<String>,
}

/// A Kafka name with or without underscores, any case: `IDEMPOTENT_WRITE`, `IdempotentWrite`.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn parse_named<T: Copy>(
    s: &str,
    values: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, String> {
    values
        .iter()
        .copied()
        .find(|v| squash(name(*v)) == squash(s))
        .ok_or_else(|| {
            let names: Vec<&str> = values.iter().map(|v| name(*v)).collect();
            format!("expected one of {}", names.join(", "))
        })
}

pub fn parse_operation(s: &str) -> Result<Operation, String> {
    let usable: Vec<Operation> = Operation::VALUES
        .iter()
        .copied()
        .filter(|o| !matches!(o, Operation::Unknown))
        .collect();
    parse_named(s, &usable, Operation::name)
}

pub fn parse_pattern_type(s: &str) -> Result<PatternType, String> {
    let usable = [
        PatternType::Any,
        PatternType::Match,
        PatternType::Literal,
        PatternType::Prefixed,
    ];
    parse_named(s, &usable, PatternType::name)
}

pub fn parse_permission(s: &str) -> Result<Permission, String> {
    parse_named(s, &[Permission::Allow, Permission::Deny], Permission::name)
}

pub fn run(g: &Global, command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Add(a) => add(g, &a),
        AclCommand::List(f) => list(g, &f),
        AclCommand::Remove(f) => remove(g, &f),
    }
}

/// The bindings `add` creates: each principal × each operation on the one resource.
pub fn bindings(a: &AddArgs) -> anyhow::Result<Vec<AclBinding>> {
    let Some((resource_type, resource_name)) = a.resource.resource() else {
        bail!("name a resource: --topic, --group, --cluster or --transactional-id");
    };
    let principals = a
        .allow
        .iter()
        .map(|p| (p, Permission::Allow))
        .chain(a.deny.iter().map(|p| (p, Permission::Deny)));
    let mut out = Vec::new();
    for (principal, permission) in principals {
        for operation in &a.operations {
            let binding = AclBinding {
                resource_type,
                resource_name: resource_name.clone(),
                pattern_type: a.resource_pattern_type,
                principal: principal.clone(),
                host: a.host.clone(),
                operation: *operation,
                permission,
            };
            binding.validate()?;
            out.push(binding);
        }
    }
    Ok(out)
}

/// The DescribeAcls / DeleteAcls filter of the flags.
pub fn filter(f: &FilterArgs) -> AclBindingFilter {
    let (resource_type, resource_name) = match f.resource.resource() {
        Some((t, n)) => (t, Some(n)),
        None => (ResourceType::Any, None),
    };
    AclBindingFilter {
        resource_type,
        resource_name,
        pattern_type: f.resource_pattern_type,
        principal: f.principal.clone(),
        host: f.host.clone(),
        operation: f.operation.unwrap_or(Operation::Any),
        permission: f.permission.unwrap_or(Permission::Any),
    }
}

/// One ACL as printed, with Kafka's names.
#[derive(Debug, Serialize)]
struct AclRow {
    resource_type: &'static str,
    resource_name: String,
    pattern_type: &'static str,
    principal: String,
    host: String,
    operation: &'static str,
    permission: &'static str,
}

fn rows(bindings: &[AclBinding]) -> Vec<AclRow> {
    bindings
        .iter()
        .map(|b| AclRow {
            resource_type: b.resource_type.name(),
            resource_name: b.resource_name.clone(),
            pattern_type: b.pattern_type.name(),
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: b.operation.name(),
            permission: b.permission.name(),
        })
        .collect()
}

fn table(rows: &Vec<AclRow>) -> String {
    let mut t = Table::new(&[
        "RESOURCE-TYPE",
        "NAME",
        "PATTERN",
        "PRINCIPAL",
        "HOST",
        "OPERATION",
        "PERMISSION",
    ]);
    for r in rows {
        t.row(vec![
            r.resource_type.into(),
            r.resource_name.clone(),
            r.pattern_type.into(),
            r.principal.clone(),
            r.host.clone(),
            r.operation.into(),
            r.permission.into(),
        ]);
    }
    t.render()
}

fn add(g: &Global, a: &AddArgs) -> anyhow::Result<()> {
    let bindings = bindings(a)?;
    g.session()?.create_acls(&bindings)?;
    print(g.output, &rows(&bindings), table)
}

fn list(g: &Global, f: &FilterArgs) -> anyhow::Result<()> {
    let bindings = g.session()?.describe_acls(&filter(f))?;
    print(g.output, &rows(&bindings), table)
}

fn remove(g: &Global, f: &FilterArgs) -> anyhow::Result<()> {
    if f.resource.resource().is_none() && f.principal.is_none() {
        bail!(
            "this would remove every ACL: name a resource (--topic, --group, --cluster, --transactional-id) or a --principal"
        );
    }
    let removed = g.session()?.delete_acls(&[filter(f)])?;
    print(g.output, &rows(&removed), table)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(subcommand)]
        acl: AclCommand,
    }

    fn parse(args: &[&str]) -> AclCommand {
        Cmd::try_parse_from(std::iter::once("acl").chain(args.iter().copied()))
            .unwrap()
            .acl
    }

    #[test]
    fn add_makes_one_binding_per_principal_and_operation() {
        let AclCommand::Add(a) = parse(&[
            "add",
            "--allow-principal",
            "User:alice",
            "--deny-principal",
            "User:bob",
            "--operation",
            "Read",
            "--operation",
            "IDEMPOTENT_WRITE",
            "--topic",
            "orders",
            "--resource-pattern-type",
            "prefixed",
        ]) else {
            panic!("not add")
        };
        let b = bindings(&a).unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(
            b[0],
            AclBinding {
                resource_type: ResourceType::Topic,
                resource_name: "orders".into(),
                pattern_type: PatternType::Prefixed,
                principal: "User:alice".into(),
                host: "*".into(),
                operation: Operation::Read,
                permission: Permission::Allow,
            }
        );
        assert_eq!(b[1].operation, Operation::IdempotentWrite);
        assert_eq!(
            (b[3].principal.as_str(), b[3].permission),
            ("User:bob", Permission::Deny)
        );
    }

    #[test]
    fn add_refuses_what_create_acls_would() {
        let no_resource = parse(&["add", "--allow-principal", "User:a", "--operation", "read"]);
        let AclCommand::Add(a) = no_resource else {
            panic!()
        };
        assert!(
            bindings(&a)
                .unwrap_err()
                .to_string()
                .starts_with("name a resource")
        );
        let AclCommand::Add(a) = parse(&[
            "add",
            "--allow-principal",
            "alice",
            "--operation",
            "read",
            "--cluster",
        ]) else {
            panic!()
        };
        let err = bindings(&a).unwrap_err().to_string();
        assert!(err.contains("principalType:principalName"), "{err}");
        let any = Cmd::try_parse_from(["acl", "add", "--allow-principal", "User:a", "--cluster"]);
        assert!(any.is_err(), "an operation is required");
        let two = Cmd::try_parse_from([
            "acl",
            "add",
            "--allow-principal",
            "User:a",
            "--operation",
            "read",
            "--cluster",
            "--topic",
            "t",
        ]);
        assert!(two.is_err(), "one resource at a time");
    }

    #[test]
    fn filters_leave_unnamed_parts_open() {
        let AclCommand::List(f) = parse(&["list", "--principal", "User:alice"]) else {
            panic!()
        };
        assert_eq!(
            filter(&f),
            AclBindingFilter {
                principal: Some("User:alice".into()),
                ..AclBindingFilter::ANY
            }
        );
        let AclCommand::Remove(f) = parse(&[
            "remove",
            "--cluster",
            "--operation",
            "alter",
            "--permission",
            "deny",
            "--resource-pattern-type",
            "match",
        ]) else {
            panic!()
        };
        let filter = filter(&f);
        assert_eq!(filter.resource_type, ResourceType::Cluster);
        assert_eq!(filter.resource_name.as_deref(), Some("kafka-cluster"));
        assert_eq!(filter.pattern_type, PatternType::Match);
        assert_eq!(
            (filter.operation, filter.permission),
            (Operation::Alter, Permission::Deny)
        );
    }

    #[test]
    fn names_parse_in_kafkas_and_camel_case() {
        assert_eq!(
            parse_operation("DescribeConfigs"),
            Ok(Operation::DescribeConfigs)
        );
        assert_eq!(parse_operation("all"), Ok(Operation::All));
        assert!(
            parse_operation("fly")
                .unwrap_err()
                .starts_with("expected one of ANY, ALL")
        );
        assert_eq!(parse_pattern_type("PREFIXED"), Ok(PatternType::Prefixed));
        assert!(parse_pattern_type("unknown").is_err());
        assert_eq!(parse_permission("Allow"), Ok(Permission::Allow));
    }
}
