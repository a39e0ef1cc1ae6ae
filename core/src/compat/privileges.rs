//! `--user` and `--group`: give up root once the addresses are set up, as `exabgp healthcheck`
//! does (`setresgid`, then `setresuid`, so the group can still be changed).
//!
//! Unlike the healthcheck, the supplementary groups are replaced too (by the new group, or the
//! user's primary group): otherwise the probe would keep root's groups. glibc applies each
//! change to every thread of the process (the log writer thread already runs).

use nix::unistd::{Gid, Group, Uid, User, setgroups, setresgid, setresuid};

/// The user and group `--user`/`--group` name, looked up before anything is set up, so that a
/// name that does not exist stops the probe before it changes the host.
#[derive(Debug, Default)]
pub(crate) struct Target {
    user: Option<User>,
    group: Option<Group>,
}

/// Look `user` and `group` up; a message naming the option on failure.
pub(crate) fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Target, String> {
    let user = user
        .map(|name| {
            User::from_name(name)
                .map_err(|errno| format!("--user {name}: cannot look it up: {errno}"))?
                .ok_or_else(|| format!("--user {name}: no such user"))
        })
        .transpose()?;
    let group = group
        .map(|name| {
            Group::from_name(name)
                .map_err(|errno| format!("--group {name}: cannot look it up: {errno}"))?
                .ok_or_else(|| format!("--group {name}: no such group"))
        })
        .transpose()?;
    Ok(Target { user, group })
}

/// Switch to the resolved user and/or group; a message naming the option on failure.
pub(crate) fn drop_to(target: &Target) -> Result<(), String> {
    let Target { user, group } = target;
    let gid: Option<Gid> = group
        .as_ref()
        .map(|g| g.gid)
        .or(user.as_ref().map(|u| u.gid));
    if let Some(gid) = gid {
        let what = match &group {
            Some(group) => format!("--group {}", group.name),
            None => format!("--user {}", user.as_ref().map_or("", |u| u.name.as_str())),
        };
        // Only root may set the supplementary groups; a probe already running as the target
        // user has nothing to give up.
        if Uid::effective().is_root() {
            setgroups(&[gid]).map_err(|errno| format!("{what}: cannot set the groups: {errno}"))?;
        }
        setresgid(gid, gid, gid)
            .map_err(|errno| format!("{what}: cannot switch to group {gid}: {errno}"))?;
        tracing::debug!(gid = gid.as_raw(), "dropped privileges to the group");
    }
    if let Some(user) = user {
        setresuid(user.uid, user.uid, user.uid).map_err(|errno| {
            format!(
                "--user {}: cannot switch to uid {}: {errno}",
                user.name, user.uid
            )
        })?;
        tracing::debug!(uid = user.uid.as_raw(), "dropped privileges to the user");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_named() {
        assert_eq!(
            resolve(Some("no-such-user-x"), None).unwrap_err(),
            "--user no-such-user-x: no such user"
        );
        assert_eq!(
            resolve(None, Some("no-such-group-x")).unwrap_err(),
            "--group no-such-group-x: no such group"
        );
        assert_eq!(drop_to(&resolve(None, None).unwrap()), Ok(()));
    }
}
