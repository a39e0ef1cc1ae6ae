//! Who wrote a state file, and whether it still runs: a pid alone is not enough (pids are
//! reused), so the writer records its pid and its process start time (field 22 of
//! `/proc/<pid>/stat`, clock ticks since boot) and a reader checks both.

/// This process's start time, for its state file.
pub(crate) fn own_start_time() -> Option<u64> {
    start_time(std::process::id())
}

/// The start time of process `pid`, `None` when there is no such process (or it is a zombie:
/// killed, not yet reaped, so it serves nothing).
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Field 22 of a `/proc/<pid>/stat` line, `None` for a zombie or a dead process. The command
/// name (field 2) is in parentheses and may hold spaces and `)`, so fields are counted after
/// its last `)`.
fn parse_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // Field 3 is the process state.
    let state = fields.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    // Fields 4 to 21 (18 of them), then field 22.
    fields.nth(18)?.parse().ok()
}

/// Why a writer no longer counts, `None` while it runs.
pub(crate) fn writer_gone(pid: u32, recorded: u64) -> Option<String> {
    match start_time(pid) {
        None => Some(format!("its writer (pid {pid}) is gone")),
        Some(started) if started != recorded => Some(format!(
            "its writer (pid {pid}) is gone: that pid now belongs to another process"
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_field_22_even_with_odd_command_names() {
        let line = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10";
        assert_eq!(parse_stat(line), Some(123_456));
        let zombie = "42 (x) Z 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10";
        assert_eq!(parse_stat(zombie), None);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }

    #[test]
    fn this_process_runs_and_a_reaped_one_does_not() {
        let mine = own_start_time().expect("this process has a start time");
        assert_eq!(writer_gone(std::process::id(), mine), None);
        assert!(
            writer_gone(std::process::id(), mine + 1)
                .unwrap()
                .contains("another process")
        );
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // (Unless the pid was reused at once: then it belongs to another process.)
        assert!(
            writer_gone(pid, 1)
                .unwrap()
                .contains(&format!("pid {pid}) is gone"))
        );
    }
}
