//! The accept loop the example servers share: it hands each connection to the server and
//! outlives the errors that pass.
//!
//! Invariant: the loop ends only on an error that cannot pass. Running out of file descriptors,
//! socket buffers or memory, or a connection aborted before it was accepted, is logged (one line
//! on stderr) and waited out with a pause that starts at 5 ms, doubles up to 1 s and is
//! forgotten after the next successful accept, as Go's `net/http` does.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use gort::net::{TcpListener, TcpStream};

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
