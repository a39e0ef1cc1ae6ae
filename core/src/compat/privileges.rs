//! `--user` and `--group`: give up root once the addresses are set up, as `exabgp healthcheck`
//! does (`setresgid`, then `setresuid`, so the group can still be changed).
//!
//! Unlike the healthcheck, the supplementary groups are replaced too (by the new group, or the
//! user's primary group): otherwise the probe would keep root's groups. glibc applies each
//! change to every thread of the process (the log writer thread already runs).

use nix::unistd::{Gid, Group, Uid, User, setgroups, setresgid, setresuid};

use crate::compat::error::CompatError;

/// The user and group `--user`/`--group` name, looked up before anything is set up, so that a
/// name that does not exist stops the probe before it changes the host.
#[derive(Debug, Default)]
pub(crate) struct Target {
    user: Option<User>,
    group: Option<Group>,
}

/// Look `user` and `group` up; a message naming the option on failure.
pub(crate) fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Target, CompatError> {
    let lookup = |option: &'static str, name: &str, errno| CompatError::Lookup {
        option,
        name: name.to_string(),
        errno,
    };
    let unknown = |option: &'static str, name: &str| CompatError::Unknown {
        option,
        name: name.to_string(),
    };
    let user = user
        .map(|name| {
            User::from_name(name)
                .map_err(|errno| lookup("user", name, errno))?
                .ok_or_else(|| unknown("user", name))
        })
        .transpose()?;
    let group = group
        .map(|name| {
            Group::from_name(name)
                .map_err(|errno| lookup("group", name, errno))?
                .ok_or_else(|| unknown("group", name))
        })
        .transpose()?;
    Ok(Target { user, group })
}

/// Switch to the resolved user and/or group; a message naming the option on failure.
pub(crate) fn drop_to(target: &Target) -> Result<(), CompatError> {
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
        let refused = |action: String| {
            let option = what.clone();
            move |errno| CompatError::Switch {
                option,
                action,
                errno,
            }
        };
        if Uid::effective().is_root() {
            setgroups(&[gid]).map_err(refused("set the groups".into()))?;
        }
        setresgid(gid, gid, gid).map_err(refused(format!("switch to group {gid}")))?;
        tracing::debug!(gid = gid.as_raw(), "dropped privileges to the group");
    }
    if let Some(user) = user {
        setresuid(user.uid, user.uid, user.uid).map_err(|errno| CompatError::Switch {
            option: format!("--user {}", user.name),
            action: format!("switch to uid {}", user.uid),
            errno,
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
            resolve(Some("no-such-user-x"), None)
                .unwrap_err()
                .to_string(),
            "--user no-such-user-x: no such user"
        );
        assert_eq!(
            resolve(None, Some("no-such-group-x"))
                .unwrap_err()
                .to_string(),
            "--group no-such-group-x: no such group"
        );
        assert!(drop_to(&resolve(None, None).unwrap()).is_ok());
    }
}
