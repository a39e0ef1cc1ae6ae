//! A TCP server that accepts connections and holds them until the test closes them (FIN) or
//! resets them (RST), as a restarted or crashing server does to a client's kept connection. It
//! can greet each connection with a banner, and counts what the clients sent, so a test sees
//! that a kept connection says nothing. Plain threads, no runtime: sync and async tests alike
//! use it. Dropping it closes the listener and every held connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A running server; dropping it stops it.
pub struct HoldingServer {
    /// Where it listens.
    pub address: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    held: Mutex<Vec<TcpStream>>,
    accepted: AtomicUsize,
    received: AtomicUsize,
    stop: AtomicBool,
}

impl HoldingServer {
    /// Listen on 127.0.0.1:`port` (0: any free port; give the old port to restart a server),
    /// writing `banner` to each connection accepted.
    pub fn start(port: u16, banner: &[u8]) -> HoldingServer {
        let listener =
            TcpListener::bind(("127.0.0.1", port)).expect("bind the holding server's port");
        let address = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        let banner = banner.to_vec();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.write_all(&banner);
                let _ = stream.set_nonblocking(true);
                accepting.lock().push(stream);
                accepting.accepted.fetch_add(1, Ordering::SeqCst);
            }
        });
        HoldingServer {
            address,
            shared,
            thread: Some(thread),
        }
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections held open now.
    pub fn held(&self) -> usize {
        self.shared.lock().len()
    }

    /// Bytes the clients sent on the held connections so far (read now).
    pub fn received(&self) -> usize {
        for stream in self.shared.lock().iter_mut() {
            self.shared.drain(stream);
        }
        self.shared.received.load(Ordering::SeqCst)
    }

    /// Close every held connection the orderly way (FIN), as a server stopping does.
    pub fn close_all(&self) {
        for mut stream in self.shared.lock().drain(..) {
            // Unread data would turn the close into a reset.
            self.shared.drain(&mut stream);
        }
    }

    /// Reset every held connection (RST: `SO_LINGER` 0, then close), as a crash or a
    /// firewall does.
    pub fn reset_all(&self) {
        for stream in self.shared.lock().drain(..) {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TcpStream>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Read what `stream` has waiting, counting it.
    fn drain(&self, stream: &mut TcpStream) {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => {
                    self.received.fetch_add(read, Ordering::SeqCst);
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

impl Drop for HoldingServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread so it sees the flag and drops the listener.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.close_all();
    }
}
