//! A line-based chat server: each line a client sends reaches every other client, prefixed with
//! the sender's address.
//!
//! ```text
//! cargo run --release --example chat [ADDR]    # ADDR defaults to 127.0.0.1:7001
//! nc 127.0.0.1 7001                            # in several terminals
//! ```
//!
//! Goroutines and channels, the Go way: one hub goroutine owns the list of clients and learns
//! of joins, departures and messages through one channel. Each client has a reader goroutine,
//! which turns its lines into events, and a writer goroutine, fed by the client's own bounded
//! channel (its outbox).
//!
//! Invariants:
//! - the hub never blocks on a client: it only `try_send`s to outboxes, and a client whose
//!   outbox is full is too slow; the hub drops it (shuts its connection down) and tells the
//!   others;
//! - the hub sees a client's join before any of its lines (one reader goroutine sends both);
//! - a client's line is never sent back to it;
//! - a line longer than `MAX_LINE_BYTES` ends the client's connection.

#[path = "support/server.rs"]
mod server;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use gort::chan::{self, Receiver, Sender, TrySendError};
use gort::net::{TcpListener, TcpStream};

const DEFAULT_ADDR: &str = "127.0.0.1:7001";

/// How many lines wait for a client before it counts as too slow.
const OUTBOX_LINES: usize = 128;
/// How many events wait for the hub before readers wait in turn.
const HUB_EVENTS: usize = 1024;
/// The longest line a client may send, newline included.
const MAX_LINE_BYTES: usize = 4096;

#[gort::main]
fn main() -> io::Result<()> {
    server::run(
        DEFAULT_ADDR,
        |addr| format!("chat server listening on {addr}"),
        serve,
    )
}

/// Runs a chat room for the connections `listener` accepts. Runs forever, unless accepting
/// fails for good (the error is logged on stderr).
pub fn serve(listener: TcpListener) {
    let (events, hub_events) = chan::bounded(HUB_EVENTS);
    gort::go!(run_hub(hub_events));
    let mut last_id = 0;
    let error = server::accept_loop("chat", &listener, |socket, peer| {
        last_id += 1;
        let (id, events) = (last_id, events.clone());
        gort::go!(serve_client(id, socket, peer, events));
    });
    eprintln!("chat: accepting failed for good: {error}");
}

/// A line on its way to clients; one allocation shared by all of them.
type Line = Arc<str>;

/// What the hub hears from client goroutines.
enum Event {
    Join {
        id: u64,
        name: String,
        socket: Arc<TcpStream>,
        outbox: Sender<Line>,
    },
    Leave {
        id: u64,
    },
    Say {
        id: u64,
        text: String,
    },
}

/// A client, as the hub knows it.
struct Member {
    name: String,
    socket: Arc<TcpStream>,
    outbox: Sender<Line>,
}

/// The hub: owns the members and turns events into lines for them, until every event sender
/// is gone.
fn run_hub(events: Receiver<Event>) {
    let mut members: HashMap<u64, Member> = HashMap::new();
    for event in events.iter() {
        match event {
            Event::Join {
                id,
                name,
                socket,
                outbox,
            } => {
                broadcast(&mut members, None, format!("* {name} joined"));
                let welcome = format!("* you are {name}; {} other(s) here\n", members.len());
                let _ = outbox.try_send(welcome.into());
                members.insert(
                    id,
                    Member {
                        name,
                        socket,
                        outbox,
                    },
                );
            }
            Event::Leave { id } => {
                if let Some(member) = members.remove(&id) {
                    broadcast(&mut members, None, format!("* {} left", member.name));
                }
            }
            Event::Say { id, text } => {
                if let Some(member) = members.get(&id) {
                    let line = format!("{}: {text}", member.name);
                    broadcast(&mut members, Some(id), line);
                }
            }
        }
    }
}

/// Sends `text` as a line to every member but `sender`. Members too slow to take it are
/// dropped, and the others told, which may drop more.
fn broadcast(members: &mut HashMap<u64, Member>, sender: Option<u64>, text: String) {
    let mut dropped = deliver(members, sender, text);
    while let Some(name) = dropped.pop() {
        let notice = format!("* {name} was too slow and was disconnected");
        dropped.extend(deliver(members, None, notice));
    }
}

/// Offers `text` as a line to every member but `sender`, without waiting; drops the members
/// whose outbox is full and answers their names.
fn deliver(
    members: &mut HashMap<u64, Member>,
    sender: Option<u64>,
    mut text: String,
) -> Vec<String> {
    text.push('\n');
    let line = Line::from(text);
    let mut slow = Vec::new();
    for (&id, member) in members.iter() {
        if Some(id) == sender {
            continue;
        }
        if let Err(TrySendError::Full(_)) = member.outbox.try_send(Arc::clone(&line)) {
            slow.push(id);
        }
        // A disconnected outbox belongs to a client on its way out: its Leave follows.
    }
    let mut dropped = Vec::new();
    for member in slow.into_iter().filter_map(|id| members.remove(&id)) {
        eprintln!("chat: {} is too slow; disconnecting it", member.name);
        // Ends its writer's blocked write and its reader's read: no goroutine waits on it for
        // good.
        let _ = member.socket.shutdown(Shutdown::Both);
        dropped.push(member.name);
    }
    dropped
}

/// Runs one client: starts its writer, joins the hub, and forwards its lines until it goes.
fn serve_client(id: u64, socket: TcpStream, peer: SocketAddr, events: Sender<Event>) {
    let _ = socket.set_nodelay(true);
    let socket = Arc::new(socket);
    let (outbox, inbox) = chan::bounded(OUTBOX_LINES);
    let writer_socket = Arc::clone(&socket);
    gort::go!(write_lines(&writer_socket, inbox));
    let join = Event::Join {
        id,
        name: peer.to_string(),
        socket: Arc::clone(&socket),
        outbox,
    };
    if events.send(join).is_ok() {
        forward_lines(&socket, id, &events);
        let _ = events.send(Event::Leave { id });
    }
}

/// Writes the lines of `inbox` to the client until the hub lets go of it or the connection
/// fails; then shuts the connection down, which also ends the client's reader.
fn write_lines(mut socket: &TcpStream, inbox: Receiver<Line>) {
    for line in inbox.iter() {
        if socket.write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    let _ = socket.shutdown(Shutdown::Both);
}

/// Sends each line the client writes to the hub until the client closes its side, the
/// connection fails, or a line is too long.
fn forward_lines(socket: &TcpStream, id: u64, events: &Sender<Event>) {
    let mut reader = BufReader::new(socket);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = MAX_LINE_BYTES as u64;
        match (&mut reader).take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() == MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            return; // too long
        }
        let text = String::from_utf8_lossy(line.trim_ascii_end()).into_owned();
        if !text.is_empty() && events.send(Event::Say { id, text }).is_err() {
            return;
        }
    }
}
