//! The network examples, driven by real clients: each test serves an example on its own
//! loopback port (from a goroutine) and talks to it over TCP, from goroutines or plain threads.
//!
//! Invariants: no test sleeps to synchronise; each waits for the event it checks (a line, a
//! response, an end of stream), and every client socket has read and write timeouts of
//! `PATIENCE`, so a bug fails the test instead of hanging it. The servers run until the test
//! process ends.

// Each example includes the shared accept loop (`examples/support/server.rs`) as its own module
// so that it builds alone; here, with all of them in one crate, that file is loaded five times.
#![allow(clippy::duplicate_mod)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use gort::net::{TcpListener, TcpStream};
use tungstenite::{Error as WsError, Message};

#[allow(dead_code)]
#[path = "../examples/chat.rs"]
mod chat;
#[allow(dead_code)]
#[path = "../examples/echo_server.rs"]
mod echo_server;
#[allow(dead_code)]
#[path = "../examples/http_hello.rs"]
mod http_hello;
#[allow(dead_code)]
#[path = "../examples/tcp_proxy.rs"]
mod tcp_proxy;
#[allow(dead_code)]
#[path = "../examples/ws_echo.rs"]
mod ws_echo;

/// How long a client waits for any one read or write before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Binds a free loopback port, serves it with `serve` in a goroutine, and answers its address.
fn start(serve: impl FnOnce(TcpListener) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    gort::spawn(move || serve(listener));
    addr
}

/// A client connection with `PATIENCE` timeouts.
fn connect(addr: SocketAddr) -> TcpStream {
    let socket = TcpStream::connect(addr).expect("connect to the example");
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.set_write_timeout(Some(PATIENCE)).unwrap();
    socket
}

/// `len` bytes that differ from one `seed` to another and along the way.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Asserts that the peer has closed its sending half: the next read answers end of stream.
fn assert_end_of_stream(mut socket: &TcpStream) {
    let mut byte = [0];
    assert_eq!(
        socket.read(&mut byte).expect("read the end"),
        0,
        "expected end of stream"
    );
}

// ---------------------------------------------------------------------------------------------
// echo_server

/// Sends messages of many sizes (1 byte to 16 KiB, 256 KiB in all) one after the other, reads
/// each back in full and compares every byte; then half-closes and expects the server's end.
fn echo_round_trips(addr: SocketAddr, seed: u64) {
    let mut socket = connect(addr);
    let payload = pattern(seed, 256 * 1024);
    let mut sent = 0;
    let mut size = 1 + seed as usize % 7;
    while sent < payload.len() {
        let message = &payload[sent..(sent + size).min(payload.len())];
        socket.write_all(message).unwrap();
        let mut echoed = vec![0; message.len()];
        socket.read_exact(&mut echoed).unwrap();
        assert_eq!(
            echoed, message,
            "client {seed}: bytes {sent}.. came back changed"
        );
        sent += message.len();
        size = size * 3 % (16 * 1024) + 1;
    }
    socket.shutdown(Shutdown::Write).unwrap();
    assert_end_of_stream(&socket);
}

#[test]
fn echo_server_returns_every_byte_to_concurrent_clients() {
    let addr = start(echo_server::serve);
    let in_goroutines: Vec<_> = (0..8)
        .map(|seed| gort::spawn(move || echo_round_trips(addr, seed)))
        .collect();
    let on_threads: Vec<_> = (8..12)
        .map(|seed| std::thread::spawn(move || echo_round_trips(addr, seed)))
        .collect();
    for client in in_goroutines {
        client.join().expect("a goroutine client failed");
    }
    for client in on_threads {
        client.join().expect("a thread client failed");
    }
}

// ---------------------------------------------------------------------------------------------
// http_hello

/// One parsed HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (compared without case), if present.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts this is the server's `Hello, World!`, with `body` present unless for `HEAD`.
    fn assert_hello(&self, with_body: bool) {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(self.header("content-length"), Some("13"), "{self:?}");
        assert!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("text/plain")),
            "{self:?}"
        );
        let expected: &[u8] = if with_body { b"Hello, World!" } else { b"" };
        assert_eq!(self.body, expected, "{self:?}");
    }
}

/// A raw HTTP/1.1 client over one TCP connection: writes bytes as given, parses responses.
struct HttpClient {
    socket: TcpStream,
    /// Received bytes not yet taken by a response.
    received: Vec<u8>,
}

impl HttpClient {
    fn connect(addr: SocketAddr) -> HttpClient {
        HttpClient {
            socket: connect(addr),
            received: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).expect("send a request");
    }

    /// Reads the next response; its body is `Content-Length` bytes, or none if `has_body` is
    /// false (the answer to `HEAD`).
    fn response(&mut self, has_body: bool) -> Response {
        loop {
            if let Some(response) = self.take_response(has_body) {
                return response;
            }
            let mut chunk = [0; 4096];
            let n = self.socket.read(&mut chunk).expect("read a response");
            assert!(n > 0, "the server closed before a whole response");
            self.received.extend_from_slice(&chunk[..n]);
        }
    }

    /// Takes one whole response from the received bytes, if they hold one.
    fn take_response(&mut self, has_body: bool) -> Option<Response> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(&self.received).expect("a valid response") {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial => return None,
        };
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8(h.value.to_vec()).expect("a UTF-8 header");
                (h.name.to_owned(), value)
            })
            .collect();
        let status = parsed.code.expect("a status code");
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let body_len = if has_body {
            let length = response.header("content-length").expect("a Content-Length");
            length.parse().expect("a numeric Content-Length")
        } else {
            0
        };
        if self.received.len() < head_len + body_len {
            return None;
        }
        response.body = self.received[head_len..head_len + body_len].to_vec();
        self.received.drain(..head_len + body_len);
        Some(response)
    }

    /// Asserts that the server closed the connection after the responses already read.
    fn assert_closed(&mut self) {
        assert!(
            self.received.is_empty(),
            "bytes after the last response: {:?}",
            String::from_utf8_lossy(&self.received)
        );
        assert_end_of_stream(&self.socket);
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

#[test]
fn http_hello_keeps_a_connection_alive() {
    let mut client = HttpClient::connect(start(http_hello::serve));
    for _ in 0..3 {
        client.send(GET);
        let response = client.response(true);
        response.assert_hello(true);
        assert_eq!(response.header("connection"), None);
    }
}

#[test]
fn http_hello_answers_a_pipelined_batch_in_order() {
    let mut client = HttpClient::connect(start(http_hello::serve));
    // Three requests in one write; the HEAD in the middle marks the order of the answers.
    client.send(
        b"GET /first HTTP/1.1\r\nHost: test\r\n\r\n\
          HEAD /second HTTP/1.1\r\nHost: test\r\n\r\n\
          POST /third HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello",
    );
    client.response(true).assert_hello(true);
    client.response(false).assert_hello(false);
    client.response(true).assert_hello(true);
    // The POST's body was skipped, not taken for the start of a request: the connection
    // still serves.
    client.send(GET);
    client.response(true).assert_hello(true);
}

#[test]
fn http_hello_keeps_the_start_of_a_request_for_the_next_read() {
    let mut client = HttpClient::connect(start(http_hello::serve));
    // A whole request and half of the next, then the other half once the first is answered.
    client.send(b"GET /a HTTP/1.1\r\nHost: test\r\n\r\nGET /b HTTP/1.1\r\nHo");
    client.response(true).assert_hello(true);
    client.send(b"st: test\r\n\r\n");
    client.response(true).assert_hello(true);
}

#[test]
fn http_hello_closes_after_connection_close() {
    let mut client = HttpClient::connect(start(http_hello::serve));
    // The request after the one that asks to close is never answered.
    client.send(
        b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n\
          GET /ignored HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    let response = client.response(true);
    response.assert_hello(true);
    assert_eq!(response.header("connection"), Some("close"));
    client.assert_closed();
}

#[test]
fn http_hello_closes_http_1_0_unless_kept_alive() {
    let addr = start(http_hello::serve);
    let mut kept = HttpClient::connect(addr);
    for _ in 0..2 {
        kept.send(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        let response = kept.response(true);
        response.assert_hello(true);
        assert_eq!(response.header("connection"), Some("keep-alive"));
    }
    let mut closed = HttpClient::connect(addr);
    closed.send(b"GET / HTTP/1.0\r\n\r\n");
    let response = closed.response(true);
    response.assert_hello(true);
    assert_eq!(response.header("connection"), Some("close"));
    closed.assert_closed();
}

#[test]
fn http_hello_answers_a_malformed_request_with_400_and_closes() {
    let addr = start(http_hello::serve);
    let malformed: [&[u8]; 3] = [
        b"this is not http\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: many\r\n\r\n",
    ];
    for request in malformed {
        let mut client = HttpClient::connect(addr);
        // A good request first: its answer comes before the 400, in the same batch.
        client.send(&[GET, request].concat());
        client.response(true).assert_hello(true);
        let response = client.response(true);
        assert_eq!(response.status, 400, "{response:?}");
        assert_eq!(response.header("connection"), Some("close"));
        client.assert_closed();
    }
}

#[test]
fn http_hello_refuses_a_request_head_beyond_64_kib() {
    let mut client = HttpClient::connect(start(http_hello::serve));
    let mut request = b"GET / HTTP/1.1\r\nHost: test\r\nX-Filler: ".to_vec();
    request.resize(request.len() + 70 * 1024, b'a');
    client.send(&request);
    let response = client.response(true);
    assert_eq!(response.status, 431, "{response:?}");
    client.assert_closed();
}

// ---------------------------------------------------------------------------------------------
// chat

/// A chat participant: its connection, read line by line.
struct ChatClient {
    name: String,
    lines: BufReader<TcpStream>,
}

impl ChatClient {
    /// Connects and waits for the welcome, after which the hub counts this client in.
    fn join(addr: SocketAddr) -> ChatClient {
        let socket = connect(addr);
        let name = socket.local_addr().unwrap().to_string();
        let mut client = ChatClient {
            name,
            lines: BufReader::new(socket),
        };
        let welcome = client.next_line();
        assert!(
            welcome.starts_with(&format!("* you are {};", client.name)),
            "{welcome:?}"
        );
        client
    }

    fn say(&mut self, text: &str) {
        self.lines
            .get_mut()
            .write_all(format!("{text}\n").as_bytes())
            .expect("send a line");
    }

    /// The next line received, without its newline.
    fn next_line(&mut self) -> String {
        let mut line = String::new();
        let n = self.lines.read_line(&mut line).expect("read a line");
        assert!(n > 0, "{}: the server closed the connection", self.name);
        assert!(line.ends_with('\n'), "{line:?}");
        line.pop();
        line
    }

    fn expect_line(&mut self, expected: &str) {
        assert_eq!(self.next_line(), expected, "as received by {}", self.name);
    }
}

#[test]
fn chat_sends_a_line_to_everyone_but_its_sender() {
    let addr = start(chat::serve);
    gort::run(move || {
        let mut a = ChatClient::join(addr);
        let mut b = ChatClient::join(addr);
        a.expect_line(&format!("* {} joined", b.name));
        let mut c = ChatClient::join(addr);
        a.expect_line(&format!("* {} joined", c.name));
        b.expect_line(&format!("* {} joined", c.name));

        a.say("hello from a");
        b.expect_line(&format!("{}: hello from a", a.name));
        c.expect_line(&format!("{}: hello from a", a.name));
        // B answers only after the hub handled A's line, so A's next line is B's: had A's own
        // line come back to it, it would come first.
        b.say("hi a");
        a.expect_line(&format!("{}: hi a", b.name));
        c.expect_line(&format!("{}: hi a", b.name));

        let c_name = c.name.clone();
        drop(c);
        a.expect_line(&format!("* {c_name} left"));
        b.expect_line(&format!("* {c_name} left"));
    });
}

#[test]
fn chat_disconnects_a_client_that_does_not_read_without_stalling_the_others() {
    // Lines large enough that the silent client's socket buffers fill after a few thousand.
    const LINE_BYTES: usize = 4000;
    const MOST_LINES: usize = 50_000;
    let addr = start(chat::serve);
    gort::run(move || {
        let mut talker = ChatClient::join(addr);
        let mut listener = ChatClient::join(addr);
        talker.expect_line(&format!("* {} joined", listener.name));
        let mut silent = ChatClient::join(addr);
        talker.expect_line(&format!("* {} joined", silent.name));
        listener.expect_line(&format!("* {} joined", silent.name));

        let line = format!("{}: {}", talker.name, "x".repeat(LINE_BYTES));
        let text = &line[talker.name.len() + 2..];
        let notice = format!("* {} was too slow and was disconnected", silent.name);
        // In lockstep with the listener, so that only the silent client falls behind; the
        // notice comes in the listener's stream right after the line that found the silent
        // client's outbox full.
        let mut sent = 0;
        loop {
            assert!(
                sent < MOST_LINES,
                "the silent client was never disconnected"
            );
            talker.say(text);
            sent += 1;
            let received = listener.next_line();
            if received == notice {
                listener.expect_line(&line);
                break;
            }
            assert_eq!(received, line);
        }
        // The talker's own lines never came back to it: the notice is its next line.
        talker.expect_line(&notice);
        // The silent client gets the lines its buffers held, then the end of the connection.
        let mut rest = Vec::new();
        let end = silent.lines.read_to_end(&mut rest);
        assert!(
            end.is_ok() || end.is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "the silent client's connection did not end cleanly"
        );
        let whole_lines: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
        let whole_lines = &whole_lines[..whole_lines.len() - 1]; // the last may be cut short
        assert!(whole_lines.iter().all(|l| *l == line.as_bytes()));
        assert!(whole_lines.len() < sent, "the silent client got every line");
    });
}

// ---------------------------------------------------------------------------------------------
// tcp_proxy

#[test]
fn tcp_proxy_round_trips_through_an_echo_server_and_passes_the_half_close() {
    let echo = start(echo_server::serve);
    let proxy = start(move |listener| tcp_proxy::serve(listener, &echo.to_string()));
    gort::run(move || {
        let client = Arc::new(connect(proxy));
        let payload = Arc::new(pattern(99, 1 << 20));
        // Writes everything, then half-closes; meanwhile this goroutine reads the echo.
        let writer = {
            let (client, payload) = (Arc::clone(&client), Arc::clone(&payload));
            gort::spawn(move || {
                (&*client).write_all(&payload).unwrap();
                client.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut echoed = Vec::new();
        (&*client)
            .read_to_end(&mut echoed)
            .expect("read the echo up to the end");
        writer.join().unwrap();
        assert_eq!(echoed.len(), payload.len());
        assert!(echoed == *payload, "the echo differs from what was sent");
    });
}

#[test]
fn tcp_proxy_answers_after_the_clients_half_close() {
    // An upstream that reads to the end of the request, then answers with its length.
    let upstream = start(|listener| {
        for socket in listener.incoming() {
            let mut socket = socket.unwrap();
            gort::go! {
                let mut request = Vec::new();
                socket.read_to_end(&mut request).unwrap();
                socket.write_all(format!("got {} bytes", request.len()).as_bytes()).unwrap();
            };
        }
    });
    let proxy = start(move |listener| tcp_proxy::serve(listener, &upstream.to_string()));
    // A client on a plain thread, through a std socket.
    let client = std::net::TcpStream::connect(proxy).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    (&client).write_all(&pattern(7, 300_000)).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    (&client).read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "got 300000 bytes");
}

// ---------------------------------------------------------------------------------------------
// ws_echo

/// Sends text, binary and ping messages over a WebSocket client on `stream`, checks each
/// answer, then closes the WebSocket and expects the server to end the connection.
fn websocket_conversation<S: Read + Write>(addr: SocketAddr, stream: S) {
    let (mut websocket, response) =
        tungstenite::client(format!("ws://{addr}/"), stream).expect("the WebSocket handshake");
    assert_eq!(response.status(), 101);
    let messages = [
        Message::Text("hello, gort".to_owned()),
        Message::Binary(vec![0, 1, 2, 255]),
        Message::Text("ünïcødé ✓".to_owned()),
        Message::Binary(pattern(3, 200_000)),
    ];
    for message in messages {
        websocket.send(message.clone()).expect("send a message");
        assert_eq!(websocket.read().expect("read the echo"), message);
    }
    websocket
        .send(Message::Ping(b"are you there".to_vec()))
        .unwrap();
    assert_eq!(
        websocket.read().unwrap(),
        Message::Pong(b"are you there".to_vec())
    );
    websocket.close(None).expect("start the closing handshake");
    loop {
        match websocket.read() {
            Ok(Message::Close(_)) => {}
            Ok(other) => panic!("a message after close: {other:?}"),
            Err(WsError::ConnectionClosed) => break,
            Err(error) => panic!("the closing handshake failed: {error}"),
        }
    }
}

#[test]
fn ws_echo_echoes_text_and_binary_messages() {
    let addr = start(ws_echo::serve);
    // One client in a goroutine over gort's socket, one on a plain thread over std's.
    let in_goroutine = gort::spawn(move || websocket_conversation(addr, connect(addr)));
    let on_thread = std::thread::spawn(move || {
        let stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        websocket_conversation(addr, stream);
    });
    in_goroutine.join().expect("the goroutine client failed");
    on_thread.join().expect("the thread client failed");
}
