//! An HTTP/1.1 server that answers every request with `Hello, World!`: one goroutine per
//! connection, written as plain blocking code, on gort's netpoller.
//!
//! ```text
//! cargo run --release --example http_hello [ADDR]      # ADDR defaults to 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/
//! curl http://127.0.0.1:8080/ http://127.0.0.1:8080/again   # two requests, one connection
//! ```
//!
//! Requests are parsed with `httparse`. Connections stay open between requests (HTTP/1.1 unless
//! the client sends `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`), and
//! requests may be pipelined: every complete request the buffer holds is answered, in order,
//! with one write for the whole batch. A request body announced by `Content-Length` is read and
//! ignored; `Transfer-Encoding` is not supported (501).
//!
//! Invariants:
//! - at most `MAX_REQUEST_BYTES` (+1, to notice the excess) of a request are buffered; a longer
//!   request is answered with 431 (head) or 413 (body) and the connection closes;
//! - a request that does not parse is answered with 400 and the connection closes;
//! - the server closes a connection by half-closing it and reading what the client still sends
//!   for a moment, so the client reads the last response instead of a connection reset.

#[path = "support/server.rs"]
mod server;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream};

const DEFAULT_ADDR: &str = "127.0.0.1:8080";
const BODY: &[u8] = b"Hello, World!";

/// The most bytes of one request (head and body) kept in memory.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The most header lines in one request.
const MAX_HEADERS: usize = 64;
/// The most bytes one read asks for.
const READ_CHUNK: usize = 8 * 1024;
/// How long, and how many bytes at most, a closing connection keeps reading.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;

#[gort::main]
fn main() -> io::Result<()> {
    server::run(
        DEFAULT_ADDR,
        |addr| format!("listening on http://{addr}/"),
        serve,
    )
}

/// Serves HTTP on every connection `listener` accepts, each in its own goroutine. Runs
/// forever, unless accepting fails for good (the error is logged on stderr).
pub fn serve(listener: TcpListener) {
    let error = server::accept_loop("http_hello", &listener, |socket, _peer| {
        gort::go!(serve_connection(socket));
    });
    eprintln!("http_hello: accepting failed for good: {error}");
}

/// An HTTP status this server answers with.
#[derive(Clone, Copy)]
struct Status {
    code: u16,
    reason: &'static str,
}

const OK: Status = Status {
    code: 200,
    reason: "OK",
};
const BAD_REQUEST: Status = Status {
    code: 400,
    reason: "Bad Request",
};
const CONTENT_TOO_LARGE: Status = Status {
    code: 413,
    reason: "Content Too Large",
};
const HEADERS_TOO_LARGE: Status = Status {
    code: 431,
    reason: "Request Header Fields Too Large",
};
const NOT_IMPLEMENTED: Status = Status {
    code: 501,
    reason: "Not Implemented",
};

/// What the start of a connection's buffered bytes holds.
enum Parsed {
    /// A whole request of `len` bytes, to answer.
    Request { len: usize, answer: Answer },
    /// The start of a request: more bytes are needed.
    Partial,
    /// Bytes that cannot become a request: answer with this status, then close.
    Invalid(Status),
}

/// How to answer one well-formed request.
#[derive(Clone, Copy)]
struct Answer {
    /// A `HEAD` request: headers only.
    head_only: bool,
    /// The connection stays open after this answer.
    keep_alive: bool,
    /// The request was HTTP/1.0, whose keep-alive must be confirmed in the answer.
    http_1_0: bool,
}

/// Whether a connection stays open after a batch of answers.
#[derive(PartialEq, Eq)]
enum Next {
    KeepOpen,
    Close,
}

/// Answers the requests of one connection until either side closes it.
fn serve_connection(socket: TcpStream) {
    let _ = socket.set_nodelay(true);
    let mut pending = Vec::with_capacity(READ_CHUNK);
    let mut answers = Vec::new();
    loop {
        match read_more(&socket, &mut pending) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let next = answer_complete_requests(&mut pending, &mut answers);
        if !answers.is_empty() && (&socket).write_all(&answers).is_err() {
            return;
        }
        answers.clear();
        if next == Next::Close {
            close_gracefully(&socket);
            return;
        }
    }
}

/// Appends what one read gives to `pending`, never growing it past `MAX_REQUEST_BYTES + 1`.
fn read_more(mut socket: &TcpStream, pending: &mut Vec<u8>) -> io::Result<usize> {
    let start = pending.len();
    let room = (MAX_REQUEST_BYTES + 1 - start).min(READ_CHUNK);
    pending.resize(start + room, 0);
    let read = socket.read(&mut pending[start..]);
    pending.truncate(start + *read.as_ref().unwrap_or(&0));
    read
}

/// Writes the answers to every complete request at the start of `pending` into `answers`, in
/// order, and removes those requests, keeping the start of the next one.
fn answer_complete_requests(pending: &mut Vec<u8>, answers: &mut Vec<u8>) -> Next {
    let mut consumed = 0;
    let next = loop {
        match parse_request(&pending[consumed..]) {
            Parsed::Request { len, answer } => {
                consumed += len;
                write_hello(answers, answer);
                if !answer.keep_alive {
                    break Next::Close;
                }
            }
            Parsed::Partial if pending.len() - consumed > MAX_REQUEST_BYTES => {
                write_error(answers, HEADERS_TOO_LARGE);
                break Next::Close;
            }
            Parsed::Partial => break Next::KeepOpen,
            Parsed::Invalid(status) => {
                write_error(answers, status);
                break Next::Close;
            }
        }
    };
    pending.drain(..consumed);
    next
}

/// Parses the request at the start of `bytes`.
fn parse_request(bytes: &[u8]) -> Parsed {
    if bytes.is_empty() {
        return Parsed::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Invalid(HEADERS_TOO_LARGE),
        Err(_) => return Parsed::Invalid(BAD_REQUEST),
    };
    let http_1_0 = request.version == Some(0);
    let mut body_len: Option<usize> = None;
    let (mut close, mut keep_alive) = (false, false);
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            match (parse_length(header.value), body_len) {
                (Some(len), None) => body_len = Some(len),
                (Some(len), Some(earlier)) if len == earlier => {}
                _ => return Parsed::Invalid(BAD_REQUEST),
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parsed::Invalid(NOT_IMPLEMENTED);
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= has_token(header.value, b"close");
            keep_alive |= has_token(header.value, b"keep-alive");
        }
    }
    let len = head_len.saturating_add(body_len.unwrap_or(0));
    if len > MAX_REQUEST_BYTES {
        return Parsed::Invalid(CONTENT_TOO_LARGE);
    }
    if bytes.len() < len {
        return Parsed::Partial;
    }
    let answer = Answer {
        head_only: request.method == Some("HEAD"),
        keep_alive: !close && (!http_1_0 || keep_alive),
        http_1_0,
    };
    Parsed::Request { len, answer }
}

/// A `Content-Length` value: decimal digits only.
fn parse_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Whether a comma-separated header value lists `token` (compared without case).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

/// Appends the `Hello, World!` answer to one request. The full answer on a kept-open HTTP/1.1
/// connection (to any request but `HEAD`), which nearly every request gets, is always the same
/// bytes: they are formatted once and copied from then on.
fn write_hello(out: &mut Vec<u8>, answer: Answer) {
    static KEPT_OPEN_ANSWER: OnceLock<Vec<u8>> = OnceLock::new();
    let connection = match (answer.keep_alive, answer.http_1_0) {
        (false, _) => Some("close"),
        (true, true) => Some("keep-alive"),
        (true, false) => None,
    };
    if connection.is_none() && !answer.head_only {
        let bytes = KEPT_OPEN_ANSWER.get_or_init(|| {
            let mut bytes = Vec::new();
            write_response(&mut bytes, OK, None, BODY.len(), BODY);
            bytes
        });
        out.extend_from_slice(bytes);
        return;
    }
    let body = if answer.head_only { &[][..] } else { BODY };
    write_response(out, OK, connection, BODY.len(), body);
}

/// Appends an error answer, after which the server closes the connection.
fn write_error(out: &mut Vec<u8>, status: Status) {
    let body = format!("{}\n", status.reason);
    write_response(out, status, Some("close"), body.len(), body.as_bytes());
}

/// Appends one response: status line, the minimal headers, and `body` (empty for `HEAD`,
/// whose `content_length` still describes the full body).
fn write_response(
    out: &mut Vec<u8>,
    status: Status,
    connection: Option<&str>,
    content_length: usize,
    body: &[u8],
) {
    let Status { code, reason } = status;
    write!(
        out,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {content_length}\r\n"
    )
    .expect("writing to a Vec cannot fail");
    if let Some(connection) = connection {
        write!(out, "Connection: {connection}\r\n").expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Half-closes the connection, then reads and drops what the client still sends, for a
/// bounded time and number of bytes: closing with unread bytes would reset the connection and
/// could destroy the last response before the client reads it.
fn close_gracefully(mut socket: &TcpStream) {
    if socket.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut sink = [0; 4096];
    let mut left = LINGER_BYTES;
    while left > 0 {
        let time_left = deadline.saturating_duration_since(Instant::now());
        if time_left.is_zero() || socket.set_read_timeout(Some(time_left)).is_err() {
            return;
        }
        match socket.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}
