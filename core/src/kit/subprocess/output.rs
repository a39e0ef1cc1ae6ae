//! A program's output: its stdin one `/dev/null` kept open, its stdout and stderr pipes
//! read as data comes (kept registered with the runtime and reused between runs), the last
//! bytes of each kept for the reason.

use std::os::fd::BorrowedFd;

use super::*;

/// stdin for a program: one `/dev/null` kept open (the same descriptor for every run).
pub(super) fn dev_null() -> std::io::Result<&'static File> {
    static DEV_NULL: OnceLock<File> = OnceLock::new();
    let file = match DEV_NULL.get() {
        Some(file) => file,
        None => {
            let opened = File::open("/dev/null")?;
            DEV_NULL.get_or_init(|| opened)
        }
    };
    Ok(file)
}

/// A pipe for a program's stdout or stderr: the read end non-blocking and registered with the
/// runtime, both close-on-exec (the program gets the write end as its fd 1 or 2).
pub(super) struct OutputPipe {
    read: Receiver,
    pub(super) write: OwnedFd,
}

/// Pipes returned clean by finished runs, for the next ones. Per thread, because the read end
/// is registered with the runtime driving this thread (a current-thread runtime in the
/// binaries); one whose runtime has shut down is found out when taken and discarded.
const SPARE_PIPES_KEPT: usize = 4;

thread_local! {
    static SPARE_PIPES: RefCell<Vec<OutputPipe>> = const { RefCell::new(Vec::new()) };
}

impl OutputPipe {
    /// A spare pipe whose registration still works, or a new one.
    pub(super) fn take() -> std::io::Result<OutputPipe> {
        while let Some(pipe) = SPARE_PIPES.with(|spares| spares.borrow_mut().pop()) {
            // Polling with a no-op waker registers nothing we rely on: `fill` polls again.
            let mut context = Context::from_waker(Waker::noop());
            if !matches!(pipe.read.poll_read_ready(&mut context), Poll::Ready(Err(_))) {
                return Ok(pipe);
            }
        }
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        Ok(OutputPipe {
            // Non-blocking just above: no need for the checking constructor.
            read: Receiver::from_owned_fd_unchecked(read)?,
            write,
        })
    }
}

/// How many bytes one read takes, and how many reads one wake-up does before yielding.
const CHUNK: usize = 32 * 1024;

thread_local! {
    /// The buffer reads go through, made once: a fresh zeroed 32 KiB array for every read was
    /// two-thirds of the instructions of a whole quiet check (callgrind), and evicted as much
    /// of the cache.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; CHUNK]);
}

/// Run `read` with the thread's scratch buffer (never held across an await, never nested).
pub(super) fn with_scratch<R>(read: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|scratch| read(&mut scratch.borrow_mut()))
}
pub(super) const READS_PER_WAKE: usize = 8;

/// The read end of one output pipe (registered with the runtime) and the tail kept from it.
pub(super) struct Capture {
    pipe: Option<Receiver>,
    write: OwnedFd,
    pub(super) tail: Tail,
}

impl Capture {
    pub(super) fn new(pipe: OutputPipe, keep: usize) -> Self {
        Capture {
            pipe: Some(pipe.read),
            write: pipe.write,
            tail: Tail::new(keep),
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.pipe.is_some()
    }

    /// Wait until the pipe is readable, then read what is there.
    pub(super) async fn fill(&mut self) {
        let Some(pipe) = &self.pipe else {
            return std::future::pending().await;
        };
        let open = match pipe.readable().await {
            Ok(()) => read_some(pipe, &mut self.tail, READS_PER_WAKE),
            Err(_) => false,
        };
        if !open {
            self.pipe = None;
        }
    }

    /// Read what is in the pipe now, without waiting, once the program has exited. Returns
    /// true when the pipe was emptied.
    ///
    /// With `trust_readiness` (the exit was learnt from the program's pidfd, through the
    /// runtime), the runtime's readiness is trusted: `try_read` makes no syscall on a pipe it has
    /// seen no data come into. Whatever the program wrote was in the pipe before it exited, so
    /// epoll queued the pipe's event before the pidfd's, and the runtime took both, in order,
    /// before the exit could be seen. Otherwise (SIGCHLD, which another child may have sent, or
    /// a status found directly) the pipe is read directly. Data written later, by a
    /// descendant, is not covered; `run_captured` does not reuse a pipe when one was left.
    pub(super) fn drain_now(&mut self, trust_readiness: bool) -> bool {
        let Some(pipe) = &self.pipe else {
            return false;
        };
        if !trust_readiness {
            return read_direct(pipe.as_fd(), &mut self.tail, 2 * READS_PER_WAKE);
        }
        let tail = &mut self.tail;
        with_scratch(|chunk| {
            for _ in 0..2 * READS_PER_WAKE {
                match pipe.try_read(chunk) {
                    Ok(0) => return false,
                    Ok(n) => tail.push(&chunk[..n]),
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
            }
            false
        })
    }

    /// Give the pipe back for the next run (call only when it is empty and nobody else holds it).
    pub(super) fn recycle(mut self) {
        let Some(read) = self.pipe.take() else {
            return;
        };
        // `try_with`: the thread may be exiting, its pool already gone.
        let _ = SPARE_PIPES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < SPARE_PIPES_KEPT {
                spares.push(OutputPipe {
                    read,
                    write: self.write,
                });
            }
        });
    }
}

/// Read up to `reads` chunks into `tail`, stopping when the pipe is empty (as far as the runtime
/// knows: `try_read` clears its readiness then). Returns false on an error (or EOF, which cannot
/// happen while we hold the write end).
pub(super) fn read_some(pipe: &Receiver, tail: &mut Tail, reads: usize) -> bool {
    with_scratch(|chunk| {
        for _ in 0..reads {
            match pipe.try_read(chunk) {
                Ok(0) => return false,
                Ok(n) => tail.push(&chunk[..n]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        true
    })
}

/// Read what `pipe` holds now into `tail` with `read` itself (not through the runtime's
/// readiness), at most `reads` chunks. True when it was emptied (a read would block).
pub(super) fn read_direct(pipe: BorrowedFd<'_>, tail: &mut Tail, reads: usize) -> bool {
    with_scratch(|chunk| {
        for _ in 0..reads {
            match nix::unistd::read(pipe, chunk) {
                Ok(0) => return false,
                Ok(n) => tail.push(&chunk[..n]),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return true,
                Err(_) => return false,
            }
        }
        false
    })
}

/// The last `keep` bytes of a stream.
pub(super) struct Tail {
    keep: usize,
    bytes: Vec<u8>,
}

impl Tail {
    pub(super) fn new(keep: usize) -> Self {
        Tail {
            keep,
            bytes: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= self.keep {
            self.bytes.clear();
            self.bytes
                .extend_from_slice(&chunk[chunk.len() - self.keep..]);
            return;
        }
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(self.keep);
        self.bytes.drain(..overflow);
        self.bytes.extend_from_slice(chunk);
    }

    /// Lossily decoded, control characters dropped, whitespace collapsed.
    pub(super) fn text(&self) -> String {
        if self.bytes.is_empty() {
            return String::new();
        }
        let text = String::from_utf8_lossy(&self.bytes);
        let printable: String = text
            .chars()
            .filter(|c| !c.is_control() || c.is_whitespace())
            .collect();
        printable.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

pub(super) fn join_tails(parts: &[String]) -> String {
    parts
        .iter()
        .filter(|part| !part.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut tail = Tail::new(5);
        tail.push(b"abc");
        tail.push(b"defg");
        assert_eq!(tail.bytes, b"cdefg");
        tail.push(b"0123456789");
        assert_eq!(tail.bytes, b"56789");
        tail.push(b"\x07x\ty");
        assert_eq!(tail.text(), "9x y");
    }
}
