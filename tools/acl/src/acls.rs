//! The set of ACLs the cluster holds: a sorted, serializable set of bindings, selected by
//! filters for DescribeAcls / DeleteAcls and by resource type for the authorizer.

use std::collections::BTreeSet;

use crate::filter::AclBindingFilter;
use crate::model::{AclBinding, Operation, PatternType, Permission, ResourceType};

/// The ACLs the cluster holds. The server keeps them in the replicated metadata, so the set
/// is ordered (the same bytes on every node) and serializes as a plain sequence of bindings.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Acls {
    bindings: BTreeSet<AclBinding>,
}

impl Acls {
    /// An empty set.
    pub fn new() -> Self {
        Acls::default()
    }

    /// Adds a binding; `false` if it was already present (CreateAcls still succeeds then,
    /// as in Kafka, but nothing needs replicating).
    pub fn insert(&mut self, binding: AclBinding) -> bool {
        self.bindings.insert(binding)
    }

    /// Removes a binding; `false` if it was not present.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        self.bindings.remove(binding)
    }

    /// Whether the set holds `binding`.
    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.bindings.contains(binding)
    }

    /// The bindings `filter` selects, in order.
    pub fn matching<'a>(
        &'a self,
        filter: &'a AclBindingFilter,
    ) -> impl Iterator<Item = &'a AclBinding> + 'a {
        self.bindings
            .iter()
            .filter(move |binding| filter.matches(binding))
    }

    /// Every binding, in order.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.bindings.iter()
    }

    /// How many bindings the set holds.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether the set holds no binding.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// The bindings of one resource type. The set sorts by resource type first, so this is
    /// a range, not a scan of every ACL.
    pub(crate) fn of_resource_type(
        &self,
        resource_type: ResourceType,
    ) -> impl Iterator<Item = &AclBinding> {
        // The smallest binding of the type: UNKNOWN sorts first and empty strings are least.
        let first = AclBinding {
            resource_type,
            resource_name: String::new(),
            pattern_type: PatternType::Unknown,
            principal: String::new(),
            host: String::new(),
            operation: Operation::Unknown,
            permission: Permission::Unknown,
        };
        self.bindings
            .range(first..)
            .take_while(move |binding| binding.resource_type == resource_type)
    }
}

impl FromIterator<AclBinding> for Acls {
    fn from_iter<I: IntoIterator<Item = AclBinding>>(iter: I) -> Self {
        Acls {
            bindings: iter.into_iter().collect(),
        }
    }
}

impl Extend<AclBinding> for Acls {
    fn extend<I: IntoIterator<Item = AclBinding>>(&mut self, iter: I) {
        self.bindings.extend(iter);
    }
}

impl<'a> IntoIterator for &'a Acls {
    type Item = &'a AclBinding;
    type IntoIter = std::collections::btree_set::Iter<'a, AclBinding>;

    fn into_iter(self) -> Self::IntoIter {
        self.bindings.iter()
    }
}
