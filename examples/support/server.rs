//! What the example servers share: `run`, their `main` (bind the address from the command
//! line, announce it, serve), and the accept loop, which hands each connection to the server
//! and outlives the errors that pass.
//!
//! Invariant: the loop ends only on an error that cannot pass. Running out of file descriptors,
//! socket buffers or memory, or a connection aborted before it was accepted, is logged (one line
//! on stderr) and waited out with a pause that starts at 5 ms, doubles up to 1 s and is
//! forgotten after the next successful accept, as Go's `net/http` does.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use gort::net::{TcpListener, TcpStream};

/// Binds the address given as the first command-line argument (or `default_addr`), prints
/// `announce(bound address)` on stdout, and calls `serve`, which returns only when accepting
/// failed for good.
pub fn run(
    default_addr: &str,
    announce: impl FnOnce(SocketAddr) -> String,
    serve: impl FnOnce(TcpListener),
) -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| default_addr.to_owned());
    let listener = TcpListener::bind(&addr)?;
    println!("{}", announce(listener.local_addr()?));
    io::stdout().flush()?;
    serve(listener);
    Err(io::Error::other(
        "the listener stopped accepting connections",
    ))
}

/// The pause after a first failed accept; each further failure in a row doubles it.
const FIRST_ACCEPT_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause between failed accepts.
const MAX_ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// Accepts connections and hands each to `handle` until accepting fails with an error that
/// cannot pass, which it answers. Errors that pass are logged and waited out (see the module docs). `server` names the
/// server in the log line.
pub fn accept_loop(
    server: &str,
    listener: &TcpListener,
    mut handle: impl FnMut(TcpStream, SocketAddr),
) -> io::Error {
    let mut pause: Option<Duration> = None;
    loop {
        match listener.accept() {
            Ok((socket, peer)) => {
                pause = None;
                handle(socket, peer);
            }
            Err(error) if passes(&error) => {
                let next = pause.map_or(FIRST_ACCEPT_PAUSE, |p| (p * 2).min(MAX_ACCEPT_PAUSE));
                eprintln!("{server}: accept failed: {error}; retrying in {next:?}");
                gort::time::sleep(next);
                pause = Some(next);
            }
            Err(error) => return error,
        }
    }
}

/// Whether an accept error is temporary: a shortage of descriptors, buffers or memory that
/// closing connections relieves, or a connection that failed before it was accepted.
fn passes(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) || matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EPROTO)
    )
}
