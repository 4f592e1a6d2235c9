//! A WebSocket echo server: `tungstenite`, a crate written for blocking sockets, runs unchanged
//! over `gort::net::TcpStream`, one goroutine per connection.
//!
//! ```text
//! cargo run --release --example ws_echo [ADDR]    # ADDR defaults to 127.0.0.1:9001
//! websocat ws://127.0.0.1:9001/                   # or any WebSocket client
//! ```
//!
//! Text and binary messages come back as they were sent; tungstenite itself answers pings and
//! completes the closing handshake.

#[path = "support/server.rs"]
mod server;

use std::io;
use std::net::SocketAddr;

use gort::net::{TcpListener, TcpStream};
use tungstenite::{Error, Message};

const DEFAULT_ADDR: &str = "127.0.0.1:9001";

#[gort::main]
fn main() -> io::Result<()> {
    server::run(
        DEFAULT_ADDR,
        |addr| format!("listening on ws://{addr}/"),
        serve,
    )
}

/// Echoes WebSocket messages on every connection `listener` accepts, each in its own
/// goroutine. Runs forever, unless accepting fails for good (the error is logged on stderr).
pub fn serve(listener: TcpListener) {
    let error = server::accept_loop("ws_echo", &listener, |socket, peer| {
        gort::go!(echo_messages(socket, peer));
    });
    eprintln!("ws_echo: accepting failed for good: {error}");
}

/// Completes the WebSocket handshake on `socket`, then sends back every text and binary
/// message until the connection closes.
fn echo_messages(socket: TcpStream, peer: SocketAddr) {
    let _ = socket.set_nodelay(true);
    let mut websocket = match tungstenite::accept(socket) {
        Ok(websocket) => websocket,
        Err(error) => {
            eprintln!("ws_echo: {peer}: handshake failed: {error}");
            return;
        }
    };
    loop {
        let outcome = match websocket.read() {
            Ok(message @ (Message::Text(_) | Message::Binary(_))) => websocket.send(message),
            // Pings, pongs and the peer's close: tungstenite has already done what they need.
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) => {}
            Err(Error::ConnectionClosed) => return,
            Err(error) => {
                eprintln!("ws_echo: {peer}: {error}");
                return;
            }
        }
    }
}
