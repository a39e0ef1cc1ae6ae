//! Logging to stderr only (ExaBGP forwards a child's stderr to its own log), one line per event,
//! text or JSON, at a level set by `-v`/`-q` (or `EXAPROBE_LOG` as a tracing filter).
//!
//! Logging never blocks the probe: ExaBGP forwards stderr and can stall, so events go through a
//! bounded queue to a writer thread ([`LogQueue`]). When the queue is full, lines are dropped and
//! counted; once stderr drains, the count is logged (`dropped N log lines`). (tracing-appender's
//! non-blocking writer was not used: its guard prints to stdout, ExaBGP's command pipe, when its
//! queue is full, and blocks exit for up to 1.1 s.)
//!
//! With `--syslog` the same lines go, one datagram each, to the local syslog socket instead
//! ([`crate::observe::syslog`]), through the same queue and thread.
//!
//! Every line is escaped on its way out: a newline, another control character or a bidi
//! override inside an event (from a config value, a server's answer) cannot forge a log line or
//! reorder what an operator reads.

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::observe::syslog::{SyslogSink, SyslogTarget};

/// Log line format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Lines waiting for stderr, at most.
const QUEUE_LINES: usize = 1024;

/// The process's log queue, once [`init`] ran.
static QUEUE: OnceLock<LogQueue> = OnceLock::new();

/// Install the global subscriber, writing to stderr or (`syslog`) to the syslog socket. Safe to
/// call once; later calls are ignored.
pub(crate) fn init(format: LogFormat, verbose: u8, quiet: u8, syslog: Option<SyslogTarget>) {
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = EnvFilter::try_from_env("EXAPROBE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let syslog = syslog.and_then(|target| match SyslogSink::connect(target.clone()) {
        Ok(sink) => Some(sink),
        Err(error) => {
            eprintln!(
                "{}: --syslog: cannot reach {}: {error}; logging to stderr",
                target.tag,
                target.socket.display()
            );
            None
        }
    });
    let to_syslog = syslog.is_some();
    let ansi = !to_syslog && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let queue = QUEUE
        .get_or_init(|| match syslog {
            Some(mut sink) => LogQueue::spawn_sink(
                Box::new(move |level: tracing::Level, line: &[u8]| sink.send(level, line)),
                true,
            ),
            None => LogQueue::spawn(std::io::stderr(), !ansi),
        })
        .clone();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(queue)
        .with_target(false);
    let _ = match format {
        // Syslog stamps each message itself.
        LogFormat::Text if to_syslog => builder.with_ansi(false).without_time().try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Log how many lines were dropped, once stderr has drained after dropping some. The checker
/// calls this after every check.
pub(crate) fn report_dropped_lines() {
    if let Some(dropped) = QUEUE.get().and_then(LogQueue::take_drained_drops) {
        tracing::warn!(
            dropped,
            "dropped {dropped} log lines while stderr was not drained"
        );
    }
}

/// Give the writer thread up to `limit` to write what is queued (at exit).
pub(crate) fn flush(limit: Duration) {
    if let Some(queue) = QUEUE.get() {
        queue.flush(limit);
    }
}

/// Where the writer thread puts each line (with its event's level).
type LineSink = Box<dyn FnMut(tracing::Level, &[u8]) + Send>;

/// A bounded queue of log lines in front of a writer thread: sending never blocks.
#[derive(Clone)]
pub(crate) struct LogQueue {
    sender: SyncSender<(tracing::Level, Vec<u8>)>,
    counts: Arc<Counts>,
    escape_ansi: bool,
}

#[derive(Default)]
struct Counts {
    /// Lines dropped since the writer last caught up.
    dropped: AtomicU64,
    /// Drops counted when the writer caught up, not yet reported.
    drained_drops: AtomicU64,
    /// Lines queued and not yet written.
    pending: AtomicUsize,
}

impl LogQueue {
    /// Start the writer thread on `output`. `escape_ansi`: escape ESC too (no terminal colors).
    pub(crate) fn spawn<W: Write + Send + 'static>(mut output: W, escape_ansi: bool) -> Self {
        Self::spawn_sink(
            Box::new(move |_, line: &[u8]| {
                let _ = output.write_all(line).and_then(|()| output.flush());
            }),
            escape_ansi,
        )
    }

    /// Start the writer thread handing each line to `output`.
    fn spawn_sink(output: LineSink, escape_ansi: bool) -> Self {
        let (sender, receiver) = sync_channel(QUEUE_LINES);
        let counts = Arc::new(Counts::default());
        let thread_counts = Arc::clone(&counts);
        let spawned = std::thread::Builder::new()
            .name("exaprobe-log".into())
            .spawn(move || write_lines(output, &receiver, &thread_counts));
        if let Err(error) = spawned {
            // Without the thread every line is dropped (and counted): never block the probe.
            eprintln!("exaprobe: cannot start the log writer: {error}");
        }
        LogQueue {
            sender,
            counts,
            escape_ansi,
        }
    }

    fn send(&self, level: tracing::Level, line: Vec<u8>) {
        self.counts.pending.fetch_add(1, Ordering::SeqCst);
        match self.sender.try_send((level, line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counts.pending.fetch_sub(1, Ordering::SeqCst);
                self.counts.dropped.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// The number of lines dropped before stderr last drained, once.
    pub(crate) fn take_drained_drops(&self) -> Option<u64> {
        let dropped = self.counts.drained_drops.swap(0, Ordering::SeqCst);
        (dropped > 0).then_some(dropped)
    }

    fn flush(&self, limit: Duration) {
        let until = Instant::now() + limit;
        while self.counts.pending.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The writer thread: write each line; when the queue is empty, publish the drops counted.
fn write_lines(mut output: LineSink, lines: &Receiver<(tracing::Level, Vec<u8>)>, counts: &Counts) {
    loop {
        let (level, line) = match lines.try_recv() {
            Ok(line) => line,
            Err(TryRecvError::Empty) => {
                let dropped = counts.dropped.swap(0, Ordering::SeqCst);
                counts.drained_drops.fetch_add(dropped, Ordering::SeqCst);
                match lines.recv() {
                    Ok(line) => line,
                    Err(_) => return,
                }
            }
            Err(TryRecvError::Disconnected) => return,
        };
        output(level, &line);
        counts.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<'a> MakeWriter<'a> for LogQueue {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter {
            queue: self,
            level: tracing::Level::INFO,
            buffer: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        EventWriter {
            queue: self,
            level: *meta.level(),
            buffer: Vec::new(),
        }
    }
}

/// Collects one formatted event, then escapes it and queues it as one line.
pub(crate) struct EventWriter<'a> {
    queue: &'a LogQueue,
    /// The event's level (the syslog severity).
    level: tracing::Level,
    buffer: Vec<u8>,
}

impl Write for EventWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter<'_> {
    fn drop(&mut self) {
        if !self.buffer.is_empty() {
            let text = String::from_utf8_lossy(&self.buffer);
            let line = escape_line(&text, self.queue.escape_ansi);
            self.queue.send(self.level, line.into_bytes());
        }
    }
}

/// `text` as one line: control characters (but the final newline, tabs, and ESC when colors
/// are on) and bidi controls written as visible escapes.
pub(crate) fn escape_line(text: &str, escape_ansi: bool) -> String {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut line = String::with_capacity(body.len() + 1);
    for c in body.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push('\t'),
            '\u{1b}' if !escape_ansi => line.push(c),
            c if c.is_control() || is_bidi_control(c) => {
                // `\uXXXX`: readable, and a valid escape inside a JSON string too.
                line.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => line.push(c),
        }
    }
    line.push('\n');
    line
}

/// Unicode bidi embedding, override, isolate and mark characters (Trojan Source).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsFd;

    #[test]
    fn escapes_everything_that_could_forge_or_reorder_a_line() {
        assert_eq!(escape_line("a\nb\rc\u{7}d\n", true), "a\\nb\\rc\\u0007d\n");
        assert_eq!(escape_line("x\u{1b}[31mRED", true), "x\\u001b[31mRED\n");
        assert_eq!(escape_line("x\u{1b}[31mRED", false), "x\u{1b}[31mRED\n");
        assert_eq!(
            escape_line("evil\u{202e}txt.exe\u{2066}", true),
            "evil\\u202etxt.exe\\u2066\n"
        );
        assert_eq!(escape_line("tab\there é\n", true), "tab\there é\n");
    }

    /// A pipe nobody reads: logging goes on without blocking, drops are counted, and reported
    /// once the pipe drains.
    #[test]
    fn a_full_stderr_never_blocks_and_drops_are_reported_after_it_drains() {
        let (read_end, write_end) = nix::unistd::pipe().expect("a pipe");
        nix::fcntl::fcntl(write_end.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096))
            .expect("shrink the pipe");
        let queue = LogQueue::spawn(std::fs::File::from(write_end), true);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(queue.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for line in 0..(QUEUE_LINES * 4) {
                tracing::info!(line, "a log line long enough to fill a small pipe quickly");
            }
        });
        assert_eq!(
            queue.take_drained_drops(),
            None,
            "stderr has not drained yet"
        );
        assert!(queue.counts.dropped.load(Ordering::SeqCst) > 0);
        // Drain the pipe until the writer catches up. Non-blocking: the writer reports the drops
        // after its last write, so a blocking read could wait for a line that never comes.
        nix::fcntl::fcntl(
            read_end.as_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .expect("non-blocking reads");
        let mut reader = std::fs::File::from(read_end);
        let mut chunk = [0u8; 65536];
        let mut text = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let dropped = loop {
            match reader.read(&mut chunk) {
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the drops were never reported"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(error) => panic!("read the pipe: {error}"),
            }
            if let Some(dropped) = queue.take_drained_drops() {
                break dropped;
            }
        };
        drop(queue);
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the writer never closed the pipe"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(error) => panic!("read the rest: {error}"),
            }
        }
        let written = text.iter().filter(|&&b| b == b'\n').count() as u64;
        assert!(written >= QUEUE_LINES as u64, "{written} lines written");
        assert_eq!(
            written + dropped,
            QUEUE_LINES as u64 * 4,
            "every line written or counted"
        );
    }
}
