//! Access control: a caller's role from its credentials, and the one table that says
//! which role each RPC needs. Anything not in the table is denied.

use std::collections::HashMap;

use crate::config::AccessSection;
use crate::peer::Peer;

/// Roles, each including the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// No role: may only ask for health.
    None,
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// The role each RPC needs, by full method path. Health is open to every caller that
/// can reach the socket; reflection only describes the API, so viewers may use it.
pub const RPC_ROLES: &[(&str, Role)] = &[
    ("/grpc.health.v1.Health/Check", Role::None),
    ("/grpc.health.v1.Health/Watch", Role::None),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Role::Viewer,
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        Role::Viewer,
    ),
    ("/cairn.v1.Daemon/GetStatus", Role::Viewer),
    ("/cairn.v1.Daemon/Reload", Role::Admin),
    ("/cairn.v1.Daemon/WatchChanges", Role::Viewer),
    ("/cairn.v1.Repositories/CreateRepository", Role::Admin),
    ("/cairn.v1.Repositories/ListRepositories", Role::Viewer),
    ("/cairn.v1.Repositories/GetRepository", Role::Viewer),
    ("/cairn.v1.Repositories/GetRepositoryStats", Role::Viewer),
    ("/cairn.v1.Repositories/DeleteRepository", Role::Admin),
    ("/cairn.v1.Jobs/CreateJob", Role::Admin),
    ("/cairn.v1.Jobs/UpdateJob", Role::Admin),
    ("/cairn.v1.Jobs/DeleteJob", Role::Admin),
    ("/cairn.v1.Jobs/GetJob", Role::Viewer),
    ("/cairn.v1.Jobs/ListJobs", Role::Viewer),
    ("/cairn.v1.Jobs/SetJobEnabled", Role::Operator),
    ("/cairn.v1.Jobs/RunJob", Role::Operator),
    ("/cairn.v1.Jobs/PreviewSchedule", Role::Viewer),
    ("/cairn.v1.Jobs/ApplyJobs", Role::Admin),
    ("/cairn.v1.Runs/ListRuns", Role::Viewer),
    ("/cairn.v1.Runs/GetRun", Role::Viewer),
    ("/cairn.v1.Runs/WatchRun", Role::Viewer),
    ("/cairn.v1.Runs/CancelRun", Role::Operator),
    ("/cairn.v1.Logs/StreamLogs", Role::Viewer),
    ("/cairn.v1.Snapshots/ListSnapshots", Role::Viewer),
    ("/cairn.v1.Snapshots/ListTree", Role::Viewer),
    ("/cairn.v1.Snapshots/DiffSnapshots", Role::Viewer),
    ("/cairn.v1.Snapshots/PlanRetention", Role::Viewer),
    ("/cairn.v1.Snapshots/ForgetSnapshots", Role::Operator),
    ("/cairn.v1.Files/ListDirectory", Role::Admin),
    ("/cairn.v1.Repositories/CheckRepository", Role::Operator),
    // Operators beneath the allowed targets only; the handler checks the target.
    ("/cairn.v1.Restores/CreateRestore", Role::Operator),
    ("/cairn.v1.Audit/ListAudit", Role::Admin),
];

/// The role `path` needs; `None` for an RPC nobody may call.
pub fn required_role(path: &str) -> Option<Role> {
    rpc_entry(path).map(|(_, role)| role)
}

/// The table's entry for `path`: its own copy of the path (which outlives the
/// request, for the audit trail) and the role it needs.
pub fn rpc_entry(path: &str) -> Option<(&'static str, Role)> {
    RPC_ROLES.iter().find(|(p, _)| *p == path).copied()
}

/// Whether an RPC changes something (and so is audited when it succeeds too).
pub fn is_mutating(path: &str) -> bool {
    let method = path.rsplit('/').next().unwrap_or("");
    !(method.starts_with("Get")
        || method.starts_with("List")
        || method.starts_with("Watch")
        || method.starts_with("Stream")
        || method.starts_with("Preview")
        || method == "Check"
        || method == "ServerReflectionInfo")
}

/// Maps credentials to roles with the `[access]` config. Group names are resolved
/// once (at start and reload) through NSS, so groups from LDAP, sssd or systemd-userdb
/// count like those in `/etc/group`.
#[derive(Debug, Clone)]
pub struct RoleMap {
    admin_uids: Vec<u32>,
    /// The daemon's own uid: a user running their own daemon administers it.
    own_uid: u32,
    group_roles: HashMap<u32, Role>,
}

impl RoleMap {
    /// `gid_of` resolves a group name ([`cairn_engine::host::group_id`] in the daemon).
    pub fn new(
        access: &AccessSection,
        own_uid: u32,
        gid_of: impl Fn(&str) -> Option<u32>,
    ) -> RoleMap {
        let mut group_roles = HashMap::new();
        // Lowest first, so a group named in two lists gets the higher role.
        for (names, role) in [
            (&access.viewer_groups, Role::Viewer),
            (&access.operator_groups, Role::Operator),
            (&access.admin_groups, Role::Admin),
        ] {
            for name in names {
                match gid_of(name) {
                    Some(gid) => {
                        group_roles.insert(gid, role);
                    }
                    None => tracing::warn!(
                        group = %name,
                        role = role.name(),
                        "[access] names a group the system does not know; nobody gets this role through it"
                    ),
                }
            }
        }
        RoleMap {
            admin_uids: access.admin_uids.clone(),
            own_uid,
            group_roles,
        }
    }

    pub fn role_of(&self, peer: &Peer) -> Role {
        if peer.uid == self.own_uid || self.admin_uids.contains(&peer.uid) {
            return Role::Admin;
        }
        peer.groups
            .iter()
            .filter_map(|gid| self.group_roles.get(gid))
            .copied()
            .max()
            .unwrap_or(Role::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gid_of(name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "cairn" => Some(990),
            "cairn-operator" => Some(991),
            "cairn-admin" => Some(992),
            _ => None,
        }
    }

    fn peer(uid: u32, groups: &[u32]) -> Peer {
        Peer {
            uid,
            gid: groups.first().copied().unwrap_or(100),
            pid: 1,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn roles_follow_uid_and_groups_with_the_highest_winning() {
        let map = RoleMap::new(&AccessSection::default(), 5000, gid_of);
        assert_eq!(map.role_of(&peer(0, &[0])), Role::Admin);
        assert_eq!(
            map.role_of(&peer(5000, &[100])),
            Role::Admin,
            "the daemon's own user"
        );
        assert_eq!(map.role_of(&peer(1001, &[100, 992])), Role::Admin);
        assert_eq!(map.role_of(&peer(1002, &[990, 991])), Role::Operator);
        assert_eq!(map.role_of(&peer(1003, &[990])), Role::Viewer);
        assert_eq!(map.role_of(&peer(1004, &[100])), Role::None);
    }

    #[test]
    fn every_cairn_rpc_in_the_descriptors_has_a_role_and_unknown_ones_have_none() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(cairn_proto::FILE_DESCRIPTOR_SET).unwrap();
        for file in set.file.iter().filter(|f| f.package() == "cairn.v1") {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/cairn.v1.{}/{}", service.name(), method.name());
                    assert!(required_role(&path).is_some(), "{path} has no role");
                }
            }
        }
        assert_eq!(required_role("/cairn.v1.Jobs/DropEverything"), None);
        assert!(is_mutating("/cairn.v1.Jobs/RunJob"));
        assert!(!is_mutating("/cairn.v1.Jobs/ListJobs"));
    }
}
