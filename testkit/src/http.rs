//! A hostile HTTP/1.1 server: it answers the first request on each connection with
//! `200 ok` (keep-alive) and resets the connection when a later request arrives on it, the
//! way a server with a short keep-alive or a restarting backend does; or resets every request.
//! Written with std threads so any test, async or not, can use it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Which requests are reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// The second and later requests on a connection (a reused connection).
    OnReuse,
    /// Every request, also the first on a fresh connection.
    Always,
}

/// A running server; stops accepting when dropped.
pub struct ResettingServer {
    /// Its address on 127.0.0.1.
    pub address: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Requests answered with 200.
    pub answered: Arc<AtomicUsize>,
    /// Requests answered with a reset.
    pub resets: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for ResettingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
    }
}

/// Start the server on a free loopback port.
pub fn resetting_server(mode: Reset) -> ResettingServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    let server = ResettingServer {
        address,
        connections: Arc::default(),
        answered: Arc::default(),
        resets: Arc::default(),
        stop: Arc::default(),
    };
    let (connections, answered, resets, stop) = (
        server.connections.clone(),
        server.answered.clone(),
        server.resets.clone(),
        server.stop.clone(),
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(stream) = stream else { continue };
            connections.fetch_add(1, Ordering::SeqCst);
            let (answered, resets) = (answered.clone(), resets.clone());
            std::thread::spawn(move || serve(stream, mode, &answered, &resets));
        }
    });
    server
}

fn serve(mut stream: TcpStream, mode: Reset, answered: &AtomicUsize, resets: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut first = true;
    loop {
        // Wait for the start of a request, and read the headers of the first one only.
        let mut byte = [0u8; 1];
        if !matches!(stream.read(&mut byte), Ok(1)) {
            return;
        }
        if !first || mode == Reset::Always {
            // SO_LINGER 0: closing sends a RST instead of a FIN.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            resets.fetch_add(1, Ordering::SeqCst);
            return;
        }
        first = false;
        let mut head = vec![byte[0]];
        while !head.ends_with(b"\r\n\r\n") {
            if !matches!(stream.read(&mut byte), Ok(1)) {
                return;
            }
            head.push(byte[0]);
        }
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";
        // Counted before it leaves: the client may act on the answer (and the test read the
        // count) before this thread runs again.
        answered.fetch_add(1, Ordering::SeqCst);
        if stream.write_all(reply).is_err() {
            answered.fetch_sub(1, Ordering::SeqCst);
            return;
        }
    }
}
