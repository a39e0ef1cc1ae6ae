//! `--syslog`: the same log events as stderr would get, one datagram each to the local syslog
//! socket (`/dev/log`), in the BSD format every local syslog daemon reads (journald, rsyslog,
//! syslog-ng): `<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE`, the tag being `--name`.
//!
//! The datagrams are sent by the log writer thread ([`crate::observe::logging`]), never by the event
//! loop: a syslog daemon that stops reading blocks that thread only, and log lines are then
//! dropped and counted as when stderr stalls. A daemon restart is survived by reconnecting.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::observe::clock::syslog_stamp;
use crate::observe::options::{Facility, ObserveOptions};

/// The local syslog socket.
pub(crate) const DEFAULT_SOCKET: &str = "/dev/log";
/// Longest message body sent, in bytes (rsyslog's default limit is 8 KiB with the header).
const MAX_MESSAGE_BYTES: usize = 8000;
/// Longest tag, in characters.
const MAX_TAG_CHARS: usize = 48;

/// Where and how to send the log events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyslogTarget {
    /// The datagram socket (`/dev/log`; `--syslog-socket` for tests).
    pub(crate) socket: PathBuf,
    /// `--syslog-facility`.
    pub(crate) facility: Facility,
    /// The tag: `--name`, made safe for the header.
    pub(crate) tag: String,
}

/// The target `--syslog` asks for, if it does; `name` is the probe's name.
pub(crate) fn target(options: &ObserveOptions, name: &str) -> Option<SyslogTarget> {
    options.syslog.then(|| SyslogTarget {
        socket: options
            .syslog_socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
        facility: options.syslog_facility,
        tag: tag(name),
    })
}

/// `name` as a syslog tag: printable ASCII without space, `:`, `[` or `]` (which end a tag),
/// others replaced by `_`, at most [`MAX_TAG_CHARS`].
fn tag(name: &str) -> String {
    name.chars()
        .take(MAX_TAG_CHARS)
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, ':' | '[' | ']') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The syslog severity of a tracing level (RFC 5424: 3 err, 4 warning, 6 info, 7 debug).
pub(crate) fn severity(level: tracing::Level) -> u8 {
    match level {
        tracing::Level::ERROR => 3,
        tracing::Level::WARN => 4,
        tracing::Level::INFO => 6,
        _ => 7,
    }
}

/// One datagram: header and `message` (one escaped log line; its final newline dropped, cut at
/// [`MAX_MESSAGE_BYTES`] on a character boundary).
pub(crate) fn datagram(
    target: &SyslogTarget,
    level: tracing::Level,
    pid: u32,
    at: SystemTime,
    message: &[u8],
) -> Vec<u8> {
    let message = message.strip_suffix(b"\n").unwrap_or(message);
    let mut end = message.len().min(MAX_MESSAGE_BYTES);
    while end > 0 && end < message.len() && (message[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    let priority = u16::from(target.facility.code()) * 8 + u16::from(severity(level));
    let mut datagram =
        format!("<{priority}>{} {}[{pid}]: ", syslog_stamp(at), target.tag).into_bytes();
    datagram.extend_from_slice(&message[..end]);
    datagram
}

/// A connection to the syslog socket, made (again) when needed.
#[derive(Debug)]
pub(crate) struct SyslogSink {
    target: SyslogTarget,
    socket: Option<UnixDatagram>,
    pid: u32,
}

impl SyslogSink {
    /// Connect to `target`'s socket now, so a missing syslog daemon is known at start.
    pub(crate) fn connect(target: SyslogTarget) -> std::io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(&target.socket)?;
        Ok(SyslogSink {
            target,
            socket: Some(socket),
            pid: std::process::id(),
        })
    }

    /// Send one log line at `level`. Blocks while the daemon's queue is full (on the log
    /// writer thread); on an error (the daemon restarted) reconnects and tries once more.
    pub(crate) fn send(&mut self, level: tracing::Level, line: &[u8]) {
        let datagram = datagram(&self.target, level, self.pid, SystemTime::now(), line);
        for _ in 0..2 {
            if self.socket.is_none() {
                self.socket = UnixDatagram::unbound()
                    .and_then(|socket| socket.connect(&self.target.socket).map(|()| socket))
                    .ok();
            }
            match &self.socket {
                Some(socket) if socket.send(&datagram).is_ok() => return,
                _ => self.socket = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn local3(name: &str) -> SyslogTarget {
        SyslogTarget {
            socket: PathBuf::from("/nonexistent"),
            facility: Facility::Local3,
            tag: tag(name),
        }
    }

    #[test]
    fn formats_the_bsd_header_with_facility_severity_and_tag() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_038_741);
        let daemon = SyslogTarget {
            facility: Facility::Daemon,
            ..local3("web")
        };
        assert_eq!(
            datagram(
                &daemon,
                tracing::Level::INFO,
                42,
                at,
                b"state change from=INIT\n"
            ),
            b"<30>Nov 18 21:52:21 web[42]: state change from=INIT"
        );
        assert_eq!(
            datagram(&local3("db ro:[1]"), tracing::Level::ERROR, 7, at, b"x"),
            b"<155>Nov 18 21:52:21 db_ro__1_[7]: x"
        );
        assert!(datagram(&local3("w"), tracing::Level::WARN, 1, at, b"").starts_with(b"<156>"));
        assert!(datagram(&local3("w"), tracing::Level::TRACE, 1, at, b"").starts_with(b"<159>"));
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let sent = datagram(
            &local3("w"),
            tracing::Level::INFO,
            1,
            UNIX_EPOCH,
            long.as_bytes(),
        );
        let text = String::from_utf8(sent).expect("still UTF-8");
        let body = text.split_once("]: ").unwrap().1;
        assert_eq!(body.len(), MAX_MESSAGE_BYTES);
        assert_eq!(tag(&"n".repeat(100)).len(), MAX_TAG_CHARS);
    }

    #[test]
    fn sends_one_datagram_per_line_and_reconnects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let target = SyslogTarget {
            socket: path.clone(),
            ..local3("web")
        };
        let mut sink = SyslogSink::connect(target).unwrap();
        sink.send(tracing::Level::WARN, b"first\n");
        let mut buffer = [0u8; 9000];
        let n = receiver.recv(&mut buffer).unwrap();
        assert!(buffer[..n].starts_with(b"<156>"));
        assert!(buffer[..n].ends_with(b"]: first"));
        // The daemon restarts: a new socket at the same path.
        drop(receiver);
        std::fs::remove_file(&path).unwrap();
        let receiver = UnixDatagram::bind(&path).unwrap();
        sink.send(tracing::Level::INFO, b"second\n");
        let n = receiver.recv(&mut buffer).unwrap();
        assert!(buffer[..n].starts_with(b"<158>"));
        assert!(buffer[..n].ends_with(b": second"));
    }
}
