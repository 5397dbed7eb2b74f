//! Druid's basic authorizer model, as plain data and pure decisions: users have roles, roles
//! have permissions, a permission is an action (`READ`, `WRITE`) on the resources of a type
//! (`DATASOURCE`, `STATE`, `CONFIG`, `EXTERNAL`) whose names match a regular expression. The
//! `admin` role (every action on every resource) is built in, and held by `admin` and the
//! internal client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const ADMIN_ROLE: &str = "admin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ResourceType {
    Datasource,
    State,
    Config,
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    Read,
    Write,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// A regular expression the whole name must match.
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl Permission {
    /// Whether this permission grants `action` on the resource `name` of `resource_type`.
    pub fn grants(&self, resource_type: ResourceType, name: &str, action: Action) -> bool {
        self.action == action
            && self.resource.resource_type == resource_type
            && regex::Regex::new(&format!("^(?:{})$", self.resource.name))
                .is_ok_and(|r| r.is_match(name))
    }
}

/// What `druid_config` keeps under `basic.authorization`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// User → the roles assigned to it.
    pub users: BTreeMap<String, Vec<String>>,
    /// Role → its permissions.
    pub roles: BTreeMap<String, Vec<Permission>>,
}

/// The built-in users that hold the `admin` role whatever is stored.
pub fn is_builtin_admin(user: &str, internal_user: &str) -> bool {
    user == drover_service::auth::ADMIN_USER || user == internal_user
}

impl Policy {
    /// The roles of `user`, built-in ones included.
    pub fn roles_of(&self, user: &str, internal_user: &str) -> Vec<String> {
        let mut roles = self.users.get(user).cloned().unwrap_or_default();
        if is_builtin_admin(user, internal_user) && !roles.iter().any(|r| r == ADMIN_ROLE) {
            roles.push(ADMIN_ROLE.into());
        }
        roles
    }

    pub fn role_exists(&self, role: &str) -> bool {
        role == ADMIN_ROLE || self.roles.contains_key(role)
    }

    /// Whether `user` may do `action` on the resource `name` of `resource_type`.
    pub fn allows(
        &self,
        user: &str,
        internal_user: &str,
        resource_type: ResourceType,
        name: &str,
        action: Action,
    ) -> bool {
        self.roles_of(user, internal_user).iter().any(|role| {
            role == ADMIN_ROLE
                || self.roles.get(role).is_some_and(|perms| {
                    perms.iter().any(|p| p.grants(resource_type, name, action))
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(name: &str, t: ResourceType, a: Action) -> Permission {
        Permission {
            resource: Resource {
                name: name.into(),
                resource_type: t,
            },
            action: a,
        }
    }

    #[test]
    fn roles_grant_what_their_permissions_name() {
        let mut p = Policy::default();
        p.roles.insert(
            "wiki_writer".into(),
            vec![
                perm("wiki.*", ResourceType::Datasource, Action::Write),
                perm("wiki.*", ResourceType::Datasource, Action::Read),
            ],
        );
        p.users.insert("alice".into(), vec!["wiki_writer".into()]);
        let sys = "druid_system";
        assert!(p.allows(
            "alice",
            sys,
            ResourceType::Datasource,
            "wikipedia",
            Action::Write
        ));
        assert!(
            !p.allows(
                "alice",
                sys,
                ResourceType::Datasource,
                "other_wiki",
                Action::Write
            ),
            "whole names"
        );
        assert!(!p.allows("alice", sys, ResourceType::Config, "CONFIG", Action::Read));
        assert!(!p.allows(
            "bob",
            sys,
            ResourceType::Datasource,
            "wikipedia",
            Action::Read
        ));
        assert!(p.allows("admin", sys, ResourceType::Config, "CONFIG", Action::Write));
        assert!(p.allows(sys, sys, ResourceType::State, "STATE", Action::Write));
        // A permission whose name is not a valid expression grants nothing.
        p.roles.insert(
            "broken".into(),
            vec![perm("(", ResourceType::State, Action::Read)],
        );
        p.users.insert("carol".into(), vec!["broken".into()]);
        assert!(!p.allows("carol", sys, ResourceType::State, "(", Action::Read));
    }

    #[test]
    fn permissions_read_as_druid_writes_them() {
        let json = r#"[{"resource":{"name":"wiki.*","type":"DATASOURCE"},"action":"READ"},
                       {"resource":{"name":".*","type":"STATE"},"action":"WRITE"}]"#;
        let perms: Vec<Permission> = serde_json::from_str(json).unwrap();
        assert_eq!(perms[1].resource.resource_type, ResourceType::State);
        assert!(serde_json::from_str::<Vec<Permission>>(
            r#"[{"resource":{"name":"x","type":"TABLE"},"action":"READ"}]"#
        )
        .is_err());
    }
}
