//! TCP echo: the server's CPU time per message, gort beside tokio and may (and Go, when it is
//! installed) in the same run.
//!
//! ```text
//! cargo bench --bench net                  # every server, 5 runs each
//! cargo bench --bench net -- gort tokio    # only the servers named (gort tokio may floor go)
//! NET_BENCH_RUNS=9 cargo bench --bench net  # more runs each, on a noisy machine
//! cargo test --bench net                   # a tiny smoke run of each server (debug build)
//! ```
//!
//! Each server echoes every connection in its own goroutine (task, coroutine) on 2 worker
//! threads, and runs in a child process, this bench binary started again as
//! `net serve echo-gort|echo-tokio|echo-may` (the servers need tokio and may, which only the
//! benches, tests and examples of this package may use). Go's equivalent is
//! `benches/go/echo/main.go`, built with `go build` when `go` is on the `PATH`.
//!
//! Beside them runs `floor`: the same echo with no runtime at all, one thread serving every
//! readiness event of one `mio` poll on the spot. It shows how much of a server's CPU time is
//! the kernel's work for this load (the reads, the writes, the loopback delivery and the
//! wake-ups of the client), which no runtime can save; the last line gives it as a fraction
//! of tokio's.
//!
//! A run: 100 connections, each 2,000 round trips of 64 bytes with one message outstanding
//! (write 64 bytes, read the 64 echoed back). The connections are made, and each has done one
//! round trip, before the measured phase starts, and they close after it ends. What is
//! measured is the server's CPU time (user and system, all its threads, summed from
//! `/proc/PID/task/*/schedstat`) during the load, divided by the messages echoed; the wall time
//! of the load and the client's own CPU time per message are shown beside it. Runs of the
//! servers take turns, a fresh server process for each, and the table shows the median of 5.
//!
//! The load comes from this process: one thread running a current-thread tokio runtime with one
//! task per connection, which never takes more than one of the two cores. The alternative,
//! 100 blocking std threads (`NET_BENCH_CLIENT=threads`), disturbs the measurement more: nearly
//! every echo then wakes a sleeping client thread, and the kernel charges that wake-up
//! (scheduler work, and inter-processor interrupts on a VM) to the server's write, which
//! inflates some servers' CPU time far more than others' (tokio's most).
//!
//! A server that stops answering for 30 s fails the run with a panic naming it.
//!
//! Two more modes serve manual measurements (`strace -c -f -p PID`, `perf stat -p PID`), and
//! `benches/http.sh`:
//!
//! ```text
//! target/release/deps/net-HASH serve SERVER [ADDR]   # echo-gort|echo-tokio|echo-may|echo-floor,
//!                                                   # http-gort|http-tokio
//! target/release/deps/net-HASH load ADDR [CONNECTIONS ROUND_TRIPS]
//! ```
//!
//! `serve` prints the address it bound on its first line of output; `http-*` are HTTP/1.1
//! servers answering `Hello, World!` to every request with the rules of
//! `examples/http_hello.rs` (keep-alive, pipelined requests answered with one write), the same
//! handler code on gort and on tokio. `cargo test --bench net` also checks that both answer
//! two pipelined requests.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/may.rs"]
mod may_support;
use cpu::cpu_time;
use may_support::{may_run, may_spawn};

/// Worker threads of every server: one per core of the machine the numbers are for.
const WORKERS: usize = 2;
/// Bytes of each message.
const MESSAGE: usize = 64;
/// What the servers read at once.
const READ_BUFFER: usize = 4096;

/// How big a measurement is.
#[derive(Clone, Copy)]
struct Load {
    connections: usize,
    round_trips: usize,
    runs: usize,
}

const FULL: Load = Load {
    connections: 100,
    round_trips: 2_000,
    runs: 5,
};

/// [`FULL`], with `NET_BENCH_RUNS` runs of each server if that is set to a positive number.
fn full_load() -> Load {
    let runs = std::env::var("NET_BENCH_RUNS").ok().map(|runs| {
        runs.parse()
            .ok()
            .filter(|&runs| runs > 0)
            .unwrap_or_else(|| panic!("NET_BENCH_RUNS={runs:?} is not a positive number"))
    });
    Load {
        runs: runs.unwrap_or(FULL.runs),
        ..FULL
    }
}

/// `cargo test --bench net`: each server once, with a few connections, to see that it works.
const SMOKE: Load = Load {
    connections: 4,
    round_trips: 50,
    runs: 1,
};

impl Load {
    fn messages(self) -> usize {
        self.connections * self.round_trips
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("load") => manual_load(&args[1..]),
        _ => {
            let names: Vec<&str> = args
                .iter()
                .filter(|arg| !arg.starts_with('-'))
                .map(String::as_str)
                .collect();
            // Like criterion: `cargo bench` passes `--bench`, `cargo test` does not.
            if args.iter().any(|arg| arg == "--bench") {
                bench(full_load(), &names);
            } else {
                bench(SMOKE, &names);
                smoke_http();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The servers.

fn serve(args: &[String]) {
    let kind = args.first().map_or("", String::as_str);
    let addr = args.get(1).map_or("127.0.0.1:0", String::as_str);
    match kind {
        "echo-gort" => serve_gort(addr, echo_blocking),
        "echo-tokio" => serve_tokio(addr, echo_tokio),
        "echo-may" => serve_may(addr),
        "echo-floor" => serve_floor(addr),
        "http-gort" => serve_gort(addr, http_gort),
        "http-tokio" => serve_tokio(addr, http_tokio),
        _ => {
            eprintln!(
                "usage: net serve echo-gort|echo-tokio|echo-may|echo-floor|http-gort|http-tokio \
                 [ADDR]"
            );
            std::process::exit(2);
        }
    }
}

/// Tells the bench (or `http.sh`) where the server listens.
fn announce(addr: io::Result<SocketAddr>) {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{}", addr.expect("the listener's address")).unwrap();
    stdout.flush().unwrap();
}

fn serve_gort(addr: &str, handle: fn(gort::net::TcpStream) -> io::Result<()>) {
    gort::Runtime::builder().procs(WORKERS).start().unwrap();
    let addr = addr.to_owned();
    gort::run(move || {
        let listener = gort::net::TcpListener::bind(addr).expect("bind");
        announce(listener.local_addr());
        for socket in listener.incoming() {
            let socket = socket.expect("accept");
            socket.set_nodelay(true).unwrap();
            gort::spawn(move || handle(socket));
        }
    });
}

fn serve_tokio<F: Future<Output = io::Result<()>> + Send + 'static>(
    addr: &str,
    handle: fn(tokio::net::TcpStream) -> F,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        announce(listener.local_addr());
        loop {
            let (socket, _) = listener.accept().await.expect("accept");
            socket.set_nodelay(true).unwrap();
            tokio::spawn(handle(socket));
        }
    });
}

fn serve_may(addr: &str) {
    may::config().set_workers(WORKERS);
    let addr = addr.to_owned();
    may_run(move || {
        let listener = may::net::TcpListener::bind(addr).expect("bind");
        announce(listener.local_addr());
        for socket in listener.incoming() {
            let socket = socket.expect("accept");
            socket.set_nodelay(true).unwrap();
            may_spawn(move || echo_blocking(socket));
        }
    });
}

/// The floor: the least server CPU per message this load can cost, with no runtime at all. One
/// thread and one edge-triggered `mio` poll; each readiness event is served on the spot (read
/// until a short read or `WouldBlock`, write each read back), with no tasks, no scheduler and no
/// second thread to wake. Whatever a runtime spends above this is its own.
fn serve_floor(addr: &str) {
    use mio::{Events, Interest, Poll, Token};
    const LISTENER: Token = Token(usize::MAX);
    let mut poll = Poll::new().expect("a poll");
    let addr = addr.parse().expect("a socket address");
    let mut listener = mio::net::TcpListener::bind(addr).expect("bind");
    announce(listener.local_addr());
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .unwrap();
    let mut sockets: Vec<Option<mio::net::TcpStream>> = Vec::new();
    let mut events = Events::with_capacity(256);
    loop {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            polled => polled.expect("poll"),
        }
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    let mut socket = match listener.accept() {
                        Ok((socket, _)) => socket,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept: {e}"),
                    };
                    socket.set_nodelay(true).unwrap();
                    poll.registry()
                        .register(&mut socket, Token(sockets.len()), Interest::READABLE)
                        .unwrap();
                    sockets.push(Some(socket));
                }
            } else if let Some(socket) = &mut sockets[event.token().0]
                && echo_ready(socket, event.is_read_closed()).is_err()
            {
                let _ = poll.registry().deregister(socket);
                sockets[event.token().0] = None;
            }
        }
    }
}

/// Echoes what a ready non-blocking socket holds: `Err` once the peer closed or failed.
/// `closing`: the peer's close came with this event, so the socket is read to its end rather
/// than left after a short read (no later edge would come for the end).
fn echo_ready(socket: &mut mio::net::TcpStream, closing: bool) -> io::Result<()> {
    let mut buf = [0; READ_BUFFER];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                write_all_nonblocking(socket, &buf[..n])?;
                // A short read emptied the socket: the next bytes bring a new edge.
                if n < buf.len() && !closing {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `bytes` to a non-blocking socket, waiting in `poll(2)` while its buffer is full
/// (which 64-byte echoes with one message outstanding never meet).
fn write_all_nonblocking(socket: &mut mio::net::TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    while !bytes.is_empty() {
        match socket.write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fd = libc::pollfd {
                    fd: socket.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: `fd` is one valid pollfd for the duration of the call.
                unsafe { libc::poll(&mut fd, 1, -1) };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Echoes everything it reads until the peer closes (gort and may).
fn echo_blocking(mut socket: impl Read + Write) -> io::Result<()> {
    let mut buf = [0; READ_BUFFER];
    loop {
        match socket.read(&mut buf)? {
            0 => return Ok(()),
            n => socket.write_all(&buf[..n])?,
        }
    }
}

async fn echo_tokio(mut socket: tokio::net::TcpStream) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0; READ_BUFFER];
    loop {
        match socket.read(&mut buf).await? {
            0 => return Ok(()),
            n => socket.write_all(&buf[..n]).await?,
        }
    }
}

/// The most bytes one read asks for, and the most header lines of a request (as in
/// `examples/http_hello.rs`).
const HTTP_READ_CHUNK: usize = 8 * 1024;
const HTTP_MAX_HEADERS: usize = 64;

/// One request at the start of a connection's unanswered bytes.
enum Request {
    /// A whole request of `len` bytes (head and `Content-Length` body).
    Complete {
        len: usize,
        keep_alive: bool,
        http_1_0: bool,
        head_only: bool,
    },
    /// More bytes are needed.
    Partial,
    /// Bytes that cannot become a request.
    Invalid,
}

/// Parses the request at the start of `bytes`, by the rules of `examples/http_hello.rs`:
/// HTTP/1.1 keeps the connection open unless `Connection: close`, HTTP/1.0 only with
/// `Connection: keep-alive`; a `Content-Length` body belongs to the request.
fn parse_request(bytes: &[u8]) -> Request {
    let mut headers = [httparse::EMPTY_HEADER; HTTP_MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Request::Partial,
        Err(_) => return Request::Invalid,
    };
    let http_1_0 = request.version == Some(0);
    let (mut body, mut close, mut keep_alive) = (0, false, false);
    for header in request.headers.iter() {
        let has = |token: &[u8]| {
            header
                .value
                .split(|&b| b == b',')
                .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
        };
        if header.name.eq_ignore_ascii_case("content-length") {
            let Some(len) = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.parse().ok())
            else {
                return Request::Invalid;
            };
            body = len;
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= has(b"close");
            keep_alive |= has(b"keep-alive");
        }
    }
    if bytes.len() < head + body {
        return Request::Partial;
    }
    Request::Complete {
        len: head + body,
        keep_alive: !close && (!http_1_0 || keep_alive),
        http_1_0,
        head_only: request.method == Some("HEAD"),
    }
}

/// Answers every complete request at the start of `pending` into `answers`, in order (so that
/// pipelined requests get one write), and removes them: whether the connection stays open.
fn answer_requests(pending: &mut Vec<u8>, answers: &mut Vec<u8>) -> bool {
    let mut used = 0;
    let open = loop {
        match parse_request(&pending[used..]) {
            Request::Complete {
                len,
                keep_alive,
                http_1_0,
                head_only,
            } => {
                used += len;
                let body: &[u8] = if head_only { b"" } else { b"Hello, World!" };
                write!(
                    answers,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n"
                )
                .unwrap();
                match (keep_alive, http_1_0) {
                    (false, _) => answers.extend_from_slice(b"Connection: close\r\n"),
                    (true, true) => answers.extend_from_slice(b"Connection: keep-alive\r\n"),
                    (true, false) => {}
                }
                answers.extend_from_slice(b"\r\n");
                answers.extend_from_slice(body);
                if !keep_alive {
                    break false;
                }
            }
            Request::Partial => break pending.len() - used <= 64 * 1024,
            Request::Invalid => {
                answers.extend_from_slice(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                break false;
            }
        }
    };
    pending.drain(..used);
    open
}

/// Serves HTTP/1.1 on one connection until either side closes it: reads what is there, then
/// answers every complete request in it with one write.
fn http_gort(mut socket: gort::net::TcpStream) -> io::Result<()> {
    let (mut pending, mut answers) = (Vec::with_capacity(HTTP_READ_CHUNK), Vec::new());
    loop {
        let start = pending.len();
        pending.resize(start + HTTP_READ_CHUNK, 0);
        let n = socket.read(&mut pending[start..])?;
        pending.truncate(start + n);
        if n == 0 {
            return Ok(());
        }
        let open = answer_requests(&mut pending, &mut answers);
        socket.write_all(&answers)?;
        answers.clear();
        if !open {
            return socket.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// [`http_gort`] on tokio.
async fn http_tokio(mut socket: tokio::net::TcpStream) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut pending, mut answers) = (Vec::with_capacity(HTTP_READ_CHUNK), Vec::new());
    loop {
        let start = pending.len();
        pending.resize(start + HTTP_READ_CHUNK, 0);
        let n = socket.read(&mut pending[start..]).await?;
        pending.truncate(start + n);
        if n == 0 {
            return Ok(());
        }
        let open = answer_requests(&mut pending, &mut answers);
        socket.write_all(&answers).await?;
        answers.clear();
        if !open {
            return socket.shutdown().await;
        }
    }
}

/// `cargo test --bench net`: each HTTP server answers two pipelined requests, the second of
/// which closes the connection.
fn smoke_http() {
    let me = std::env::current_exe().expect("the bench binary's path");
    for kind in ["http-gort", "http-tokio"] {
        let mut command = Command::new(&me);
        command.args(["serve", kind]);
        let (_server, addr) = start_server(kind, &mut command);
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(STALL)).unwrap();
        socket
            .write_all(
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let mut answers = String::new();
        socket.read_to_string(&mut answers).unwrap();
        assert_eq!(
            answers.matches("HTTP/1.1 200 OK\r\n").count(),
            2,
            "{answers}"
        );
        assert_eq!(
            answers.matches("\r\n\r\nHello, World!").count(),
            2,
            "{answers}"
        );
        assert!(answers.contains("Connection: close\r\n"), "{answers}");
        println!("{kind}: answered two pipelined requests, then closed");
    }
}

// ---------------------------------------------------------------------------------------------
// The load and the measurements.

/// One server under test.
struct Server {
    name: &'static str,
    command: Command,
}

impl Server {
    /// Starts the server: its process and the address it listens on.
    fn start(&mut self) -> (Running, SocketAddr) {
        start_server(self.name, &mut self.command)
    }
}

/// A server's process, killed when dropped (also when a run fails).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and reads the address the server announces on its first line.
fn start_server(name: &str, command: &mut Command) -> (Running, SocketAddr) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting the {name} server: {e}"));
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("the {name} server announced {line:?}"));
    (running, addr)
}

/// The echo servers, those named in `names` or all.
fn servers(load: Load, names: &[&str]) -> Vec<Server> {
    let me = std::env::current_exe().expect("the bench binary's path");
    let mut servers = Vec::new();
    for name in ["gort", "tokio", "may", "floor"] {
        let mut command = Command::new(&me);
        command.args(["serve", &format!("echo-{name}")]);
        servers.push(Server { name, command });
    }
    // Go only in real measurements: the smoke run must not depend on it.
    if load.round_trips > SMOKE.round_trips
        && (names.is_empty() || names.contains(&"go"))
        && let Some(command) = go_server(&me)
    {
        servers.push(Server {
            name: "go",
            command,
        });
    }
    servers.retain(|s| names.is_empty() || names.contains(&s.name));
    servers
}

/// Builds `benches/go/echo/main.go` next to the bench binary, if Go is installed.
fn go_server(me: &std::path::Path) -> Option<Command> {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/go/echo/main.go");
    let binary = me.with_file_name("go-echo-server");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(source)
        .status();
    match built {
        Ok(status) if status.success() => {
            let mut command = Command::new(binary);
            command.env("GOMAXPROCS", WORKERS.to_string());
            Some(command)
        }
        Ok(status) => {
            println!("Go echo server: `go build` failed ({status}); measuring without it");
            None
        }
        Err(_) => {
            println!("Go echo server: `go` is not installed; measuring without it");
            None
        }
    }
}

/// What one run measured.
#[derive(Clone, Copy)]
struct Run {
    server_cpu: Duration,
    client_cpu: Duration,
    wall: Duration,
}

fn bench(load: Load, names: &[&str]) {
    let client = Client::from_env();
    let mut servers = servers(load, names);
    if servers.is_empty() {
        println!("TCP echo: no server is named {names:?} (gort, tokio, may, floor, go)");
        return;
    }
    println!(
        "TCP echo: {} connections x {} round trips of {MESSAGE} bytes ({} messages per run), \
         {} run(s) per server, servers on {WORKERS} worker threads, client: {}",
        load.connections,
        load.round_trips,
        load.messages(),
        load.runs,
        client.describe()
    );
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); servers.len()];
    for _ in 0..load.runs {
        for (server, runs) in servers.iter_mut().zip(&mut runs) {
            let (running, addr) = server.start();
            let pid = running.0.id();
            let run = client.run(addr, load, server.name, || process_cpu(pid));
            drop(running);
            runs.push(run);
        }
    }
    let messages = load.messages() as f64;
    let micros_per_message = |d: Duration| d.as_secs_f64() * 1e6 / messages;
    println!(
        "{:<6} {:>22} {:>17} {:>14} {:>22}",
        "server", "server CPU µs/message", "(min..max)", "wall ms/run", "client CPU µs/message"
    );
    let mut medians = Vec::new();
    for (server, runs) in servers.iter().zip(&runs) {
        let cpu: Vec<f64> = runs
            .iter()
            .map(|r| micros_per_message(r.server_cpu))
            .collect();
        let (median_cpu, min, max) = median_min_max(&cpu);
        let wall = median_min_max(
            &runs
                .iter()
                .map(|r| r.wall.as_secs_f64() * 1e3)
                .collect::<Vec<_>>(),
        )
        .0;
        let client_cpu = median_min_max(
            &runs
                .iter()
                .map(|r| micros_per_message(r.client_cpu))
                .collect::<Vec<_>>(),
        )
        .0;
        println!(
            "{:<6} {median_cpu:>22.2} {:>17} {wall:>14.0} {client_cpu:>22.2}",
            server.name,
            format!("({min:.2}..{max:.2})"),
        );
        medians.push((server.name, median_cpu));
    }
    if let Some(&(_, gort)) = medians.iter().find(|(name, _)| *name == "gort") {
        let ratios: Vec<String> = medians
            .iter()
            .filter(|(name, _)| *name != "gort")
            .map(|(name, cpu)| format!("gort/{name} {:.2}", gort / cpu))
            .collect();
        if !ratios.is_empty() {
            println!(
                "server CPU per message, ratio of medians: {}",
                ratios.join(", ")
            );
        }
    }
    let median_of = |name| medians.iter().find(|(n, _)| *n == name).map(|m| m.1);
    if let (Some(floor), Some(tokio)) = (median_of("floor"), median_of("tokio")) {
        println!(
            "the floor (no runtime) costs {:.2} of tokio's server CPU per message",
            floor / tokio
        );
    }
}

fn median_min_max(samples: &[f64]) -> (f64, f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    (
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    )
}

/// `net load ADDR [CONNECTIONS ROUND_TRIPS]`: one run against a server started by hand.
fn manual_load(args: &[String]) {
    let addr: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .expect("usage: net load ADDR [CONNECTIONS ROUND_TRIPS]");
    let number = |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().unwrap());
    let load = Load {
        connections: number(1, FULL.connections),
        round_trips: number(2, FULL.round_trips),
        runs: 1,
    };
    let run = Client::from_env().run(addr, load, "measured", || Duration::ZERO);
    let messages = load.messages() as f64;
    println!(
        "{} messages in {:?}: {:.2} µs of client CPU per message",
        load.messages(),
        run.wall,
        run.client_cpu.as_secs_f64() * 1e6 / messages
    );
}

/// The load generator.
#[derive(Clone, Copy)]
enum Client {
    /// One thread, a current-thread tokio runtime, a task per connection.
    Tokio,
    /// A blocking std thread per connection.
    Threads,
}

impl Client {
    fn from_env() -> Client {
        match std::env::var("NET_BENCH_CLIENT").as_deref() {
            Ok("threads") => Client::Threads,
            Ok("tokio") | Err(_) => Client::Tokio,
            Ok(other) => panic!("NET_BENCH_CLIENT={other}: expected tokio or threads"),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Client::Tokio => "one thread, current-thread tokio, a task per connection",
            Client::Threads => "a blocking std thread per connection",
        }
    }

    /// Connects, does one round trip on every connection, then measures `load.round_trips`
    /// more on each at once; `server_cpu` reads the server's CPU time so far. Panics if
    /// `server` stops answering for [`STALL`].
    fn run(
        self,
        addr: SocketAddr,
        load: Load,
        server: &str,
        server_cpu: impl Fn() -> Duration,
    ) -> Run {
        match self {
            Client::Tokio => tokio_load(addr, load, server, server_cpu),
            Client::Threads => threads_load(addr, load, server, server_cpu),
        }
    }
}

/// How long a server may leave a connection unanswered before the run fails (a run takes
/// about a second; without this, a server that stops answering would hang the bench).
const STALL: Duration = Duration::from_secs(30);

fn stalled(server: &str) -> ! {
    panic!("the {server} server did not answer for {STALL:?}: it stopped serving connections")
}

/// What message `round` of connection `connection` says, so that a mixed-up echo is caught.
fn message(connection: usize, round: usize) -> [u8; MESSAGE] {
    let mut message = [b'.'; MESSAGE];
    message[..8].copy_from_slice(&(connection as u64).to_le_bytes());
    message[8..16].copy_from_slice(&(round as u64).to_le_bytes());
    message
}

/// Measures what happens between `start` and `end` of a load.
struct Meter<F> {
    server_cpu: F,
    server_start: Duration,
    client_start: Duration,
    wall_start: Instant,
}

impl<F: Fn() -> Duration> Meter<F> {
    fn start(server_cpu: F) -> Self {
        Self {
            server_start: server_cpu(),
            client_start: cpu_time(),
            wall_start: Instant::now(),
            server_cpu,
        }
    }

    fn end(self) -> Run {
        let wall = self.wall_start.elapsed();
        Run {
            server_cpu: (self.server_cpu)().saturating_sub(self.server_start),
            client_cpu: cpu_time().saturating_sub(self.client_start),
            wall,
        }
    }
}

fn tokio_load(
    addr: SocketAddr,
    load: Load,
    server: &str,
    server_cpu: impl Fn() -> Duration,
) -> Run {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn round_trip(socket: &mut tokio::net::TcpStream, connection: usize, round: usize) {
        let sent = message(connection, round);
        socket.write_all(&sent).await.unwrap();
        let mut echo = [0; MESSAGE];
        socket.read_exact(&mut echo).await.unwrap();
        assert_eq!(echo, sent, "a wrong echo");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap();
    // One timer for each whole phase: a timer per round trip would cost the client more.
    async fn within_stall<T>(server: &str, phase: impl Future<Output = T>) -> T {
        tokio::time::timeout(STALL, phase)
            .await
            .unwrap_or_else(|_| stalled(server))
    }
    let sockets = runtime.block_on(within_stall(server, async {
        let mut sockets = Vec::new();
        for connection in 0..load.connections {
            let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
            socket.set_nodelay(true).unwrap();
            round_trip(&mut socket, connection, 0).await;
            sockets.push(socket);
        }
        sockets
    }));
    let meter = Meter::start(server_cpu);
    let sockets = runtime.block_on(within_stall(server, async {
        let tasks: Vec<_> = sockets
            .into_iter()
            .enumerate()
            .map(|(connection, mut socket)| {
                tokio::spawn(async move {
                    for round in 1..=load.round_trips {
                        round_trip(&mut socket, connection, round).await;
                    }
                    socket
                })
            })
            .collect();
        let mut sockets = Vec::new();
        for task in tasks {
            sockets.push(task.await.unwrap());
        }
        sockets
    }));
    let run = meter.end();
    drop(sockets);
    run
}

fn threads_load(
    addr: SocketAddr,
    load: Load,
    server: &str,
    server_cpu: impl Fn() -> Duration,
) -> Run {
    let round_trip = |socket: &mut std::net::TcpStream, connection: usize, round: usize| {
        let sent = message(connection, round);
        socket.write_all(&sent).unwrap();
        let mut echo = [0; MESSAGE];
        match socket.read_exact(&mut echo) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stalled(server),
            done => done.unwrap(),
        }
        assert_eq!(echo, sent, "a wrong echo");
    };
    let start = std::sync::Barrier::new(load.connections + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..load.connections)
            .map(|connection| {
                let mut socket = std::net::TcpStream::connect(addr).unwrap();
                socket.set_nodelay(true).unwrap();
                socket.set_read_timeout(Some(STALL)).unwrap();
                round_trip(&mut socket, connection, 0);
                let start = &start;
                std::thread::Builder::new()
                    .stack_size(64 << 10)
                    .spawn_scoped(scope, move || {
                        start.wait();
                        for round in 1..=load.round_trips {
                            round_trip(&mut socket, connection, round);
                        }
                        socket
                    })
                    .unwrap()
            })
            .collect();
        let meter = Meter::start(server_cpu);
        start.wait();
        let sockets: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let run = meter.end();
        drop(sockets);
        run
    })
}

/// The CPU time process `pid` has used so far, all its threads: the kernel's nanosecond
/// run times from `/proc/PID/task/*/schedstat`, or, without those, user and system time from
/// `/proc/PID/stat` in clock ticks.
fn process_cpu(pid: u32) -> Duration {
    let mut total = None;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let ran = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
            if let Some(ns) = ran {
                total = Some(total.unwrap_or(0) + ns);
            }
        }
    }
    if let Some(ns) = total {
        return Duration::from_nanos(ns);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's stat");
    // The fields after the command name, which is in parentheses: state is the first, utime
    // and stime the 12th and 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}
