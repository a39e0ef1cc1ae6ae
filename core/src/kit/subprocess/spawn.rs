//! Starting a program: `posix_spawn` with the descriptors the run already holds.
//!
//! std's `Command` does the same `posix_spawn`, but for each spawn it duplicates the three
//! descriptors it is given (`fcntl` and `close` for each), builds the file actions again (glibc
//! checks every descriptor of every action against `RLIMIT_NOFILE`: two `prlimit64` each) and
//! converts the program, its arguments and its environment. Here they are converted once, when
//! the [`Program`] is made, and the file actions and attributes once per thread: the pipes a run
//! takes are reused between runs (see `output.rs`), so the actions usually already name them.
//! What a spawn costs is then `posix_spawn` itself.

use std::cell::RefCell;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawnp};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

/// A program to run, its arguments and its environment, converted for `posix_spawn` once: a
/// check runs the same program every few seconds.
///
/// The environment is this process's when the program is made, with what [`Program::env`]
/// sets. The program is looked up in this process's `PATH` when it has no `/`.
#[derive(Clone)]
pub struct Program {
    file: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

/// The program's name and how many arguments and variables it has: an argument or the
/// environment may hold a password.
impl std::fmt::Debug for Program {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Program")
            .field("file", &self.file)
            .field("args", &self.argv.len().saturating_sub(1))
            .field("variables", &self.envp.len())
            .finish()
    }
}

impl Program {
    /// `program` with `args`, in this process's environment. An argument with a NUL byte cannot
    /// be given to a program: that is an error here rather than at every run.
    pub fn new<A: AsRef<OsStr>>(
        program: impl AsRef<OsStr>,
        args: impl IntoIterator<Item = A>,
    ) -> std::io::Result<Program> {
        let file = c_string(program.as_ref(), || "the program name".to_string())?;
        let mut argv = vec![file.clone()];
        for (index, arg) in args.into_iter().enumerate() {
            argv.push(c_string(arg.as_ref(), || {
                format!("argument {}", index + 1)
            })?);
        }
        // What cannot be passed on (a NUL byte cannot be in an environment) is not.
        let envp = std::env::vars_os()
            .filter_map(|(key, value)| CString::new(assignment(&key, &value).into_vec()).ok())
            .collect();
        Ok(Program { file, argv, envp })
    }

    /// `sh -c SCRIPT`, the command hooks and `--shell` checks run.
    pub fn shell(script: impl AsRef<OsStr>) -> std::io::Result<Program> {
        Program::new("sh", [OsStr::new("-c"), script.as_ref()])
    }

    /// Set `key` to `value` in the program's environment (replacing what it had).
    pub fn env(mut self, key: &str, value: &str) -> std::io::Result<Program> {
        let entry = c_string(&assignment(OsStr::new(key), OsStr::new(value)), || {
            format!("the environment variable {key}")
        })?;
        let prefix = format!("{key}=");
        self.envp
            .retain(|old| !old.as_bytes().starts_with(prefix.as_bytes()));
        self.envp.push(entry);
        Ok(self)
    }
}

fn assignment(key: &OsStr, value: &OsStr) -> OsString {
    let mut entry = key.to_os_string();
    entry.push("=");
    entry.push(value);
    entry
}

/// `text` as a C string; `what` names it when it has a NUL byte (without quoting it: an
/// argument may hold a password).
fn c_string(text: &OsStr, what: impl FnOnce() -> String) -> std::io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} contains a NUL byte, which no program can be given",
                what()
            ),
        )
    })
}

/// What every spawn of a thread shares: the attributes (a process group of its own, no blocked
/// signal, SIGPIPE to its default, as std does) and the file actions for the last descriptors.
struct Spawner {
    attributes: PosixSpawnAttr,
    stdio: [RawFd; 3],
    actions: PosixSpawnFileActions,
}

thread_local! {
    static SPAWNER: RefCell<Option<Spawner>> = const { RefCell::new(None) };
}

impl Spawner {
    fn new(stdio: [RawFd; 3]) -> nix::Result<Spawner> {
        let mut attributes = PosixSpawnAttr::init()?;
        attributes.set_pgroup(Pid::from_raw(0))?;
        attributes.set_sigmask(&SigSet::empty())?;
        let mut sigpipe = SigSet::empty();
        sigpipe.add(Signal::SIGPIPE);
        attributes.set_sigdefault(&sigpipe)?;
        attributes.set_flags(
            PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
                | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
                | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
        )?;
        Ok(Spawner {
            attributes,
            stdio,
            actions: actions_for(stdio)?,
        })
    }
}

/// `dup2` of each descriptor onto 0, 1 and 2 in the child (ours are close-on-exec: the program
/// keeps only these).
fn actions_for(stdio: [RawFd; 3]) -> nix::Result<PosixSpawnFileActions> {
    let mut actions = PosixSpawnFileActions::init()?;
    for (target, fd) in stdio.into_iter().enumerate() {
        actions.add_dup2(fd, target as RawFd)?;
    }
    Ok(actions)
}

/// Start `program` in a process group of its own with `stdio` as its stdin, stdout and stderr.
pub(super) fn spawn(program: &Program, stdio: [BorrowedFd<'_>; 3]) -> std::io::Result<Pid> {
    let stdio = stdio.map(|fd| fd.as_raw_fd());
    SPAWNER
        .with(|spawner| {
            let mut spawner = spawner.borrow_mut();
            let mut ready = match spawner.take() {
                Some(ready) => ready,
                None => Spawner::new(stdio)?,
            };
            if ready.stdio != stdio {
                ready.actions = actions_for(stdio)?;
                ready.stdio = stdio;
            }
            let spawned = posix_spawnp(
                &program.file,
                &ready.actions,
                &ready.attributes,
                &program.argv,
                &program.envp,
            );
            *spawner = Some(ready);
            spawned
        })
        .map_err(|errno: nix::errno::Errno| std::io::Error::from_raw_os_error(errno as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replaces_and_adds() {
        let program = Program::new("true", ["a"])
            .unwrap()
            .env("EXAPROBE_TEST_VARIABLE", "1")
            .unwrap()
            .env("EXAPROBE_TEST_VARIABLE", "2")
            .unwrap();
        let set: Vec<_> = program
            .envp
            .iter()
            .map(|entry| entry.to_bytes())
            .filter(|entry| entry.starts_with(b"EXAPROBE_TEST_VARIABLE="))
            .collect();
        assert_eq!(set, [b"EXAPROBE_TEST_VARIABLE=2"]);
        let argv: Vec<_> = program.argv.iter().map(|arg| arg.to_bytes()).collect();
        assert_eq!(argv, [b"true".as_slice(), b"a"]);
    }

    #[test]
    fn a_nul_byte_is_refused_when_made() {
        let error = Program::new("sh", ["-c", "echo SECRET\0b"]).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(
            error.to_string(),
            "argument 2 contains a NUL byte, which no program can be given"
        );
    }
}
