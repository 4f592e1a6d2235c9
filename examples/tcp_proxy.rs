//! A TCP proxy: forwards every connection made to a listening address to an upstream address,
//! and the upstream's answers back.
//!
//! ```text
//! cargo run --release --example echo_server 127.0.0.1:7000 &
//! cargo run --release --example tcp_proxy 127.0.0.1:7100 127.0.0.1:7000
//! nc 127.0.0.1 7100                           # talks to the echo server through the proxy
//! ```
//!
//! Each connection takes two goroutines, one per direction, sharing the two sockets through
//! `&TcpStream`. The upstream address is resolved for each connection, as a dial in Go would.
//!
//! Invariants:
//! - when one side closes its sending half, the proxy half-closes the same direction on the
//!   other side (`shutdown(Write)`) and keeps forwarding the other direction, so protocols that
//!   answer after the end of a request still work;
//! - when forwarding fails in one direction, both connections are shut down, which ends the
//!   other direction's goroutine too.

#[path = "support/server.rs"]
mod server;

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use gort::net::{TcpListener, TcpStream};

#[gort::main]
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: tcp_proxy LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    server::run(
        &listen,
        |addr| format!("proxying {addr} to {upstream}"),
        |listener| serve(listener, &upstream),
    )
}

/// Forwards every connection `listener` accepts to `upstream` (an address `TcpStream::connect`
/// takes, such as `"example.com:80"`). Runs forever, unless accepting fails for good (the error
/// is logged on stderr).
pub fn serve(listener: TcpListener, upstream: &str) {
    let upstream: Arc<str> = upstream.into();
    let error = server::accept_loop("tcp_proxy", &listener, |client, peer| {
        let upstream = Arc::clone(&upstream);
        gort::go!(proxy(client, peer, &upstream));
    });
    eprintln!("tcp_proxy: accepting failed for good: {error}");
}

/// Connects to `upstream` for `client` and forwards both ways until both directions end: this
/// goroutine forwards the client's bytes, a second one the upstream's.
fn proxy(client: TcpStream, peer: SocketAddr, upstream: &str) {
    let server = match TcpStream::connect(upstream) {
        Ok(server) => Arc::new(server),
        Err(error) => {
            eprintln!("tcp_proxy: {peer}: cannot connect to {upstream}: {error}");
            return;
        }
    };
    // Forwarded pieces go out at once, as they would without the proxy in between.
    let _ = server.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let client = Arc::new(client);
    let (from_server, to_client) = (Arc::clone(&server), Arc::clone(&client));
    gort::go!(forward(&from_server, &to_client));
    forward(&client, &server);
}

/// Copies what `from` reads to `to` until `from` reaches its end, then half-closes `to`. If
/// either side fails, shuts both down (see the module docs).
fn forward(mut from: &TcpStream, mut to: &TcpStream) {
    match io::copy(&mut from, &mut to) {
        Ok(_) => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Err(_) => {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
        }
    }
}
