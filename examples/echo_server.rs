//! TCP echo server: every connection gets its own goroutine, which writes back whatever it reads
//! until the client closes its side.
//!
//! ```text
//! cargo run --release --example echo_server [ADDR]    # ADDR defaults to 127.0.0.1:7000
//! nc 127.0.0.1 7000                                   # type lines; they come back
//! ```
//!
//! The code is plain blocking Rust: a read or write that would block parks the goroutine, and
//! the thread runs other connections meanwhile.
//!
//! Invariant: the accept loop (`support/server.rs`, shared by the example servers) ends only on
//! an error that cannot pass; running out of file descriptors is waited out.

#[path = "support/server.rs"]
mod server;

use std::io;

use gort::net::{TcpListener, TcpStream};

const DEFAULT_ADDR: &str = "127.0.0.1:7000";

#[gort::main]
fn main() -> io::Result<()> {
    server::run(
        DEFAULT_ADDR,
        |addr| format!("echo server listening on {addr}"),
        serve,
    )
}

/// Echoes every connection `listener` accepts, each in its own goroutine. Runs forever, unless
/// accepting fails for good (the error is logged on stderr).
pub fn serve(listener: TcpListener) {
    let error = server::accept_loop("echo_server", &listener, |socket, _peer| {
        gort::go!(echo(socket));
    });
    eprintln!("echo_server: accepting failed for good: {error}");
}

/// Writes back what `socket` reads until the client closes its side (or the connection fails,
/// which ends this connection only).
fn echo(socket: TcpStream) {
    // Echoed pieces go out at once, not held back for the acknowledgement of the previous one.
    let _ = socket.set_nodelay(true);
    // One goroutine both reads and writes, through two shared references to the socket.
    let (mut reader, mut writer) = (&socket, &socket);
    let _ = io::copy(&mut reader, &mut writer);
}
