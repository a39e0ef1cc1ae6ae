//! Which exaprobe still uses an address on an interface, so that the first of two probes with
//! the same `--ip` to exit does not remove the address the other still serves.
//!
//! Under one directory (`/run/exaprobe/ip-claims` unless `--ip-claims-dir`), per network
//! namespace (`<ns>` is the inode of `/proc/self/ns/net`, so probes in different namespaces never
//! see each other's addresses):
//!
//! - `lock`: taken (`flock`, exclusive) around every set-up and every removal, so a probe never
//!   reads the claims while another changes them or the addresses.
//! - `<ns>.owned`: the addresses some exaprobe added and none has removed yet (`IFNAME ADDRESS`
//!   per line). An address the operator configured is never in it, so it is never removed.
//! - `<ns>.<pid>.<n>.claim`: the addresses one running probe uses (added by it or found there),
//!   `flock`ed by that probe for its whole life. A claim file whose lock can be taken belongs to
//!   a probe that is gone (killed, even with SIGKILL): it is deleted.
//!
//! At exit a probe removes the addresses it claims that are owned and that no live claim names,
//! and drops them from `<ns>.owned`; an address another probe still claims stays, owned, and
//! the last claimant removes it. The files are opened before privileges are dropped and kept
//! open, so the locks and the rewrites still work as `--user`.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use nix::fcntl::{Flock, FlockArg};

/// Where the claims live unless `--ip-claims-dir` says otherwise.
pub(crate) const DEFAULT_DIR: &str = "/run/exaprobe/ip-claims";

/// One address on one interface.
pub(crate) type Key = (String, IpNet);

/// This process's claims, and the files to share them.
#[derive(Debug)]
pub(crate) struct Claims {
    dir: PathBuf,
    namespace: String,
    lock: File,
    owned: File,
    own: Option<(PathBuf, Flock<File>)>,
}

/// The directory lock, released when dropped.
pub(crate) struct Locked<'a> {
    _lock: Flock<File>,
    claims: &'a mut Claims,
}

impl Claims {
    /// Open (create) the directory and its shared files.
    pub(crate) fn open(dir: &Path) -> Result<Claims, String> {
        let context =
            |what: &str, error: std::io::Error| format!("{}: {what}: {error}", dir.display());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| context("cannot create it", e))?;
        let namespace = std::fs::metadata("/proc/self/ns/net")
            .map(|m| format!("net{}", m.ino()))
            .map_err(|e| context("cannot read /proc/self/ns/net", e))?;
        let open = |name: &str| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(dir.join(name))
                .map_err(|e| context(&format!("cannot open {name}"), e))
        };
        let lock = open("lock")?;
        let owned = open(&format!("{namespace}.owned"))?;
        Ok(Claims {
            dir: dir.to_path_buf(),
            namespace,
            lock,
            owned,
            own: None,
        })
    }

    /// Take the directory lock (waits for another probe's set-up or removal).
    pub(crate) fn lock(&mut self) -> std::io::Result<Locked<'_>> {
        let file = self.lock.try_clone()?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| errno)?;
        Ok(Locked {
            _lock: lock,
            claims: self,
        })
    }
}

impl Locked<'_> {
    /// The addresses some exaprobe added in this namespace and none removed.
    pub(crate) fn owned(&mut self) -> std::io::Result<BTreeSet<Key>> {
        let mut text = String::new();
        self.claims.owned.rewind()?;
        self.claims.owned.read_to_string(&mut text)?;
        Ok(parse(&text))
    }

    /// Replace the owned list.
    pub(crate) fn set_owned(&mut self, owned: &BTreeSet<Key>) -> std::io::Result<()> {
        let file = &mut self.claims.owned;
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(render(owned).as_bytes())?;
        file.sync_data()
    }

    /// The addresses the other live probes of this namespace claim; the claim files of probes
    /// that are gone are deleted on the way.
    pub(crate) fn others(&mut self) -> std::io::Result<BTreeSet<Key>> {
        let prefix = format!("{}.", self.claims.namespace);
        let mine = self.claims.own.as_ref().map(|(path, _)| path.clone());
        let mut claimed = BTreeSet::new();
        for entry in std::fs::read_dir(&self.claims.dir)? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if !name.starts_with(&prefix)
                || !name.ends_with(".claim")
                || Some(&path) == mine.as_ref()
            {
                continue;
            }
            let Ok(file) = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
            else {
                continue;
            };
            match Flock::lock(file, FlockArg::LockSharedNonblock) {
                // Nobody holds it: its probe is gone.
                Ok(_stale) => {
                    let _ = std::fs::remove_file(&path);
                }
                Err((mut file, _held)) => {
                    let mut text = String::new();
                    file.read_to_string(&mut text)?;
                    claimed.extend(parse(&text));
                }
            }
        }
        Ok(claimed)
    }

    /// Record what this probe uses, in a claim file it holds locked until [`Locked::release`]
    /// or its exit.
    pub(crate) fn claim(&mut self, keys: &BTreeSet<Key>) -> std::io::Result<()> {
        if self.claims.own.is_none() {
            let path = self.claims.dir.join(format!(
                "{}.{}.{}.claim",
                self.claims.namespace,
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ));
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)?;
            let lock =
                Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| errno)?;
            self.claims.own = Some((path, lock));
        }
        if let Some((_, file)) = &mut self.claims.own {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(render(keys).as_bytes())?;
        }
        Ok(())
    }

    /// Drop this probe's claim (its file; as `--user` the file may stay, and the next probe
    /// deletes it once the lock is gone with the process).
    pub(crate) fn release(&mut self) {
        if let Some((path, _lock)) = self.claims.own.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What a probe removes at exit, and what it leaves to another: of the addresses it `claimed`,
/// those it added (`mine`) or another exaprobe added (`owned`), split by whether a live probe
/// still uses them (`others`). One the operator configured is in neither list.
pub(crate) fn removable(
    claimed: &BTreeSet<Key>,
    mine: &BTreeSet<Key>,
    others: &BTreeSet<Key>,
    owned: &BTreeSet<Key>,
) -> (Vec<Key>, Vec<Key>) {
    claimed
        .iter()
        .filter(|k| owned.contains(*k) || mine.contains(*k))
        .cloned()
        .partition(|k| !others.contains(k))
}

fn render(keys: &BTreeSet<Key>) -> String {
    keys.iter()
        .map(|(ifname, host)| format!("{ifname} {host}\n"))
        .collect()
}

/// `IFNAME ADDRESS` lines; anything else is ignored (a file cut short by a crash).
fn parse(text: &str) -> BTreeSet<Key> {
    text.lines()
        .filter_map(|line| {
            let (ifname, host) = line.split_once(' ')?;
            Some((ifname.to_string(), host.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ifname: &str, host: &str) -> Key {
        (ifname.to_string(), host.parse().unwrap())
    }

    #[test]
    fn a_live_claim_is_seen_and_a_dead_one_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Claims::open(dir.path()).unwrap();
        let mut second = Claims::open(dir.path()).unwrap();
        let both: BTreeSet<Key> = [key("lo", "192.0.2.1/32"), key("lo", "2001:db8::1/128")].into();
        first.lock().unwrap().claim(&both).unwrap();
        assert_eq!(second.lock().unwrap().others().unwrap(), both);
        {
            let mut locked = first.lock().unwrap();
            locked.set_owned(&both).unwrap();
            assert_eq!(locked.owned().unwrap(), both);
        }
        // The first probe goes without releasing (killed): its lock goes with its file handle.
        let path = first.own.as_ref().unwrap().0.clone();
        drop(first);
        assert!(second.lock().unwrap().others().unwrap().is_empty());
        assert!(!path.exists(), "the stale claim file is deleted");
        // What the gone probe owned is still known as exaprobe's.
        assert_eq!(second.lock().unwrap().owned().unwrap(), both);
        assert_eq!(
            parse("lo 192.0.2.1/32\ngarbage\nlo"),
            [key("lo", "192.0.2.1/32")].into()
        );
    }

    /// One step of the world around the claims.
    #[derive(Debug, Clone)]
    enum Event {
        /// A probe starts using these of the four addresses (bit mask).
        Start(u8),
        /// The n-th running probe exits (SIGTERM).
        Exit(usize),
        /// The n-th running probe is killed (SIGKILL: no removal, its lock goes).
        Kill(usize),
        /// The operator configures one of the four addresses.
        Configure(u8),
    }

    fn event() -> impl proptest::strategy::Strategy<Value = Event> {
        use proptest::prelude::*;
        prop_oneof![
            (1u8..16).prop_map(Event::Start),
            (0usize..4).prop_map(Event::Exit),
            (0usize..4).prop_map(Event::Kill),
            (0u8..4).prop_map(Event::Configure),
        ]
    }

    /// A running probe of the model: its claims, what it uses and what it added.
    struct Running {
        claims: Claims,
        claimed: BTreeSet<Key>,
        mine: BTreeSet<Key>,
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Probes start (set-up as `ip_setup::set_up` records it), exit (removal as
        /// `Added::remove` decides it) or are killed, and the operator adds addresses, on an
        /// interface kept as a set. After every step: an address a running probe uses is on the
        /// interface; one the operator configured is never removed; with no probe left, the only
        /// addresses an exaprobe added that remain are those of killed probes nobody took over.
        #[test]
        fn shared_addresses_stay_while_used(events in proptest::collection::vec(event(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let all: Vec<Key> = (0..4).map(|i| key("lo", &format!("192.0.2.{i}/32"))).collect();
            let mut interface: BTreeSet<Key> = BTreeSet::new();
            let mut configured: BTreeSet<Key> = BTreeSet::new();
            let mut orphans: BTreeSet<Key> = BTreeSet::new();
            let mut running: Vec<Running> = Vec::new();
            for event in events {
                match event {
                    Event::Start(mask) => {
                        let mut claims = Claims::open(dir.path()).unwrap();
                        let wanted: BTreeSet<Key> = (0..4)
                            .filter(|i| mask & (1 << i) != 0)
                            .map(|i| all[i].clone())
                            .collect();
                        let mine: BTreeSet<Key> = wanted.difference(&interface).cloned().collect();
                        interface.extend(mine.iter().cloned());
                        {
                            let mut locked = claims.lock().unwrap();
                            let mut owned = locked.owned().unwrap();
                            owned.extend(mine.iter().cloned());
                            locked.set_owned(&owned).unwrap();
                            locked.claim(&wanted).unwrap();
                        }
                        orphans.retain(|k| !wanted.contains(k));
                        running.push(Running { claims, claimed: wanted, mine });
                    }
                    Event::Exit(n) if n < running.len() => {
                        let mut probe = running.remove(n);
                        let mut locked = probe.claims.lock().unwrap();
                        let others = locked.others().unwrap();
                        let mut owned = locked.owned().unwrap();
                        let (gone, _left) = removable(&probe.claimed, &probe.mine, &others, &owned);
                        for k in &gone {
                            interface.remove(k);
                            owned.remove(k);
                        }
                        locked.set_owned(&owned).unwrap();
                        locked.release();
                    }
                    Event::Kill(n) if n < running.len() => {
                        let probe = running.remove(n);
                        let still: BTreeSet<Key> =
                            running.iter().flat_map(|r| r.claimed.iter().cloned()).collect();
                        orphans.extend(probe.claimed.iter().filter(|k| {
                            !configured.contains(*k) && !still.contains(*k)
                        }).cloned());
                    }
                    Event::Configure(i) => {
                        let k = all[usize::from(i)].clone();
                        if !interface.contains(&k) {
                            interface.insert(k.clone());
                            configured.insert(k);
                        }
                    }
                    Event::Exit(_) | Event::Kill(_) => {}
                }
                for probe in &running {
                    for k in &probe.claimed {
                        proptest::prop_assert!(interface.contains(k), "{:?} used but removed", k);
                    }
                }
                for k in &configured {
                    proptest::prop_assert!(interface.contains(k), "configured {:?} removed", k);
                }
                if running.is_empty() {
                    let left: BTreeSet<Key> = interface.difference(&configured).cloned().collect();
                    proptest::prop_assert!(
                        left.is_subset(&orphans),
                        "left {:?}, orphans {:?}", left, orphans
                    );
                }
            }
        }
    }
}
