//! `gort::net` end to end: echo servers (among them 10,000 connections open at once, every byte
//! checked), a listener queueing more connections than std's backlog, half-close, peer resets,
//! read, write and connect timeouts that never fire early, a shutdown waking a goroutine parked
//! in a read, UDP and Unix socket round trips, the same API on plain threads and across threads
//! and goroutines, conversions to and from std types and raw fds, std's non-blocking mode, and
//! refused or unroutable connects.
//!
//! Every blocking operation has a generous timeout, and every test body that involves goroutines
//! a watchdog, so that a bug fails a test instead of hanging it. The 10,000-connection echo runs
//! its server and its clients in two child processes, each with its descriptor limit raised;
//! `GORT_LONG_TESTS=1` runs it for more rounds.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};

/// How long any blocking operation may wait before the test calls it a hang.
const SAFETY_NET: Duration = Duration::from_secs(20);
/// The timeout the timeout tests set: long enough to see one fire early.
const SHORT_TIMEOUT: Duration = Duration::from_millis(200);
/// How late a timeout may fire on a loaded machine.
const LATENESS: Duration = Duration::from_secs(5);

fn long_tests() -> bool {
    std::env::var_os("GORT_LONG_TESTS").is_some_and(|v| v == "1")
}

/// Gives a socket's reads and writes the [`SAFETY_NET`] timeout.
trait SafetyNet: Sized {
    fn with_safety_net(self) -> Self;
}

/// What the stream tests need of TCP and Unix streams alike.
trait Stream: Sized + Send + Sync + 'static {
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    fn try_clone(&self) -> io::Result<Self>;
}

macro_rules! impl_test_traits {
    ($($socket:ty),*) => {$(
        impl SafetyNet for $socket {
            fn with_safety_net(self) -> Self {
                self.set_read_timeout(Some(SAFETY_NET)).unwrap();
                self.set_write_timeout(Some(SAFETY_NET)).unwrap();
                self
            }
        }
    )*};
    ($($socket:ty),*; streams) => {
        impl_test_traits!($($socket),*);
        $(
            impl Stream for $socket {
                fn shutdown(&self, how: Shutdown) -> io::Result<()> {
                    <$socket>::shutdown(self, how)
                }

                fn try_clone(&self) -> io::Result<Self> {
                    <$socket>::try_clone(self)
                }
            }
        )*
    };
}

impl_test_traits!(UdpSocket, UnixDatagram);
impl_test_traits!(TcpStream, UnixStream; streams);

/// How long a test body may take before the test calls it hung: a goroutine the scheduler never
/// runs again cannot time out by itself.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `body` on a new plain thread and answers its value; fails the test instead of hanging
/// when `body` takes longer than [`WATCHDOG`].
fn bounded<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = done.send(body());
    });
    match finished.recv_timeout(WATCHDOG) {
        Ok(value) => value,
        Err(RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body sends its value"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("not done after {WATCHDOG:?}: hung"),
    }
}

/// Runs `body` in a goroutine, like `gort::run`, within the [`WATCHDOG`].
fn run<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    bounded(move || gort::run(body))
}

/// Runs `check` on a plain thread, then in a goroutine.
fn on_thread_and_in_goroutine(check: fn()) {
    bounded(check);
    run(check);
}

/// A connected TCP pair: (client, the server's side), with safety nets.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, peer) = listener.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    (client.with_safety_net(), server.with_safety_net())
}

/// A connected Unix stream pair with safety nets.
fn unix_pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    (a.with_safety_net(), b.with_safety_net())
}

/// Waits until goroutine `id` is parked waiting for the network, as a goroutine dump shows it.
fn wait_until_parked_in_io(id: gort::GoroutineId) {
    let header = format!("goroutine {} [IO wait", id.as_u64());
    let deadline = Instant::now() + SAFETY_NET;
    loop {
        let mut dump = Vec::new();
        gort::dump_goroutines(&mut dump).unwrap();
        if String::from_utf8_lossy(&dump).contains(&header) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "goroutine {id:?} never parked in IO wait"
        );
        gort::yield_now();
    }
}

/// A payload of a few hundred bytes that differs for every `index`.
fn payload(index: usize) -> Vec<u8> {
    let tag = index.to_le_bytes();
    (0..200 + index % 300)
        .map(|j| tag.get(j).copied().unwrap_or((index * 31 + j * 7) as u8))
        .collect()
}

/// Echoes what `socket` reads until the end of its stream, then closes it.
fn echo_until_eof(mut socket: impl Read + Write) -> io::Result<()> {
    let mut buf = [0; 4096];
    loop {
        let n = socket.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        socket.write_all(&buf[..n])?;
    }
}

/// Accepts connections forever, echoing each in a goroutine of its own.
fn spawn_echo_server(listener: TcpListener) {
    gort::spawn(move || {
        for socket in listener.incoming() {
            let socket = socket.unwrap().with_safety_net();
            gort::spawn(move || echo_until_eof(socket).unwrap());
        }
    });
}

/// Sends `payload`, closes the writing half, and checks that exactly `payload` comes back
/// before the end of the stream.
fn assert_echoed<S: Stream>(socket: &S, payload: &[u8])
where
    for<'a> &'a S: Read + Write,
{
    let mut writer = socket;
    writer.write_all(payload).unwrap();
    socket.shutdown(Shutdown::Write).unwrap();
    let mut socket = socket;
    let mut back = Vec::with_capacity(payload.len());
    socket.read_to_end(&mut back).unwrap();
    assert!(
        back == payload,
        "sent {} bytes, {} came back, differently",
        payload.len(),
        back.len()
    );
}

#[test]
fn a_hundred_clients_each_echo_a_hundred_messages() {
    run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_echo_server(listener);
        let clients: Vec<_> = (0..100)
            .map(|i| {
                gort::spawn(move || {
                    let mut socket = TcpStream::connect(addr).unwrap().with_safety_net();
                    for j in 0..100u32 {
                        let message = format!("{i}:{j};");
                        socket.write_all(message.as_bytes()).unwrap();
                        let mut back = vec![0; message.len()];
                        socket.read_exact(&mut back).unwrap();
                        assert_eq!(back, message.as_bytes());
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
}

/// The descriptors this process has open (not counting the one that lists them).
fn open_fds() -> u64 {
    let listing = std::fs::read_dir("/proc/self/fd").unwrap();
    listing.count() as u64 - 1
}

/// Raises this process's descriptor limit toward `wanted`: the hard limit too if it is lower
/// (allowed with `CAP_SYS_RESOURCE`), else the soft limit up to the hard one. Answers the soft
/// limit in force.
fn raise_fd_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `limit`.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    if limit.rlim_cur >= wanted {
        return limit.rlim_cur;
    }
    let both = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: wanted.max(limit.rlim_max),
    };
    // SAFETY: setrlimit reads one rlimit; without the privilege it fails and changes nothing.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &both) } == 0 {
        return wanted;
    }
    let soft_to_hard = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: as above; raising the soft limit to the hard one needs no privilege.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft_to_hard) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
    limit.rlim_max
}

/// How many connections of the concurrent echo fit in this process's descriptor limit (one
/// descriptor each, plus room for the runtime), after raising it as far as it goes.
fn connections_that_fit(wanted: usize) -> usize {
    const HEADROOM: u64 = 256;
    let wanted = wanted as u64;
    let limit = raise_fd_limit(wanted + HEADROOM + open_fds());
    let fit = limit.saturating_sub(open_fds() + HEADROOM).min(wanted);
    if fit < wanted {
        eprintln!("the descriptor limit is {limit} and cannot be raised: {fit} connections");
    }
    usize::try_from(fit).unwrap()
}

/// What the concurrent echo's server sends each connection it accepts.
const GREETING: &[u8] = b"accepted\n";
/// Connects the concurrent echo's clients may have in flight that the server has not accepted:
/// fewer than any listen backlog (std's is 128), so that the kernel never drops a handshake or
/// answers it by SYN cookie (see `a_listener_queues_a_burst_larger_than_std_s_backlog`).
const CONNECTS_IN_FLIGHT: u32 = 64;

/// The concurrent echo's server (the child process of the test): greets each of `connections`
/// it accepts, waits until all are open at once, then echoes each. The clients run in a child
/// process of their own, so that each side's descriptors fit the limit.
fn serve_concurrent_echo(connections: usize) {
    run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let started = Instant::now();
        let clients = std::thread::spawn(move || {
            let count = connections.to_string();
            let env = [
                (ECHO_ADDR, addr.as_str()),
                (ECHO_CONNECTIONS, count.as_str()),
            ];
            let child = gort_suite::run_child(CONCURRENT_ECHO, &env);
            let stderr = String::from_utf8_lossy(&child.stderr);
            eprint!("{stderr}");
            if !child.status.success() {
                // The accept loop may wait for connections that never come: end the process.
                eprintln!("the clients failed: {}", child.status);
                std::process::exit(1);
            }
        });
        let all_open = Arc::new(gort::sync::Barrier::new(connections + 1));
        let echoes: Vec<_> = (0..connections)
            .map(|_| {
                let (socket, _) = listener.accept().unwrap();
                let all_open = Arc::clone(&all_open);
                gort::spawn(move || {
                    let mut socket = socket.with_safety_net();
                    socket.write_all(GREETING)?;
                    all_open.wait();
                    echo_until_eof(socket)
                })
            })
            .collect();
        all_open.wait();
        let open = started.elapsed();
        for echo in echoes {
            echo.join().unwrap().unwrap();
        }
        let echoed = started.elapsed();
        gort::blocking(|| clients.join()).unwrap();
        eprintln!(
            "server: {connections} connections open at once after {open:?}, echoed after {echoed:?}"
        );
    });
}

/// The concurrent echo's clients (a child process of the server): every client connects and
/// waits for the server's greeting, then for every other client to get that far, then checks
/// its echo.
fn run_concurrent_clients(addr: SocketAddr, connections: usize) {
    assert_eq!(connections_that_fit(connections), connections);
    run(move || {
        let started = Instant::now();
        let in_flight = Arc::new(gort::sync::Semaphore::new(CONNECTS_IN_FLIGHT));
        let all_connected = Arc::new(gort::sync::Barrier::new(connections + 1));
        let clients: Vec<_> = (0..connections)
            .map(|index| {
                let in_flight = Arc::clone(&in_flight);
                let all_connected = Arc::clone(&all_connected);
                gort::spawn(move || {
                    let permit = in_flight.acquire();
                    let socket = TcpStream::connect(addr).unwrap().with_safety_net();
                    let mut greeting = [0; GREETING.len()];
                    (&socket).read_exact(&mut greeting).unwrap();
                    assert_eq!(greeting, GREETING);
                    drop(permit);
                    all_connected.wait();
                    assert_echoed(&socket, &payload(index));
                })
            })
            .collect();
        all_connected.wait();
        let connected = started.elapsed();
        for client in clients {
            client.join().unwrap();
        }
        eprintln!(
            "clients: {connections} connected at once after {connected:?}, echoed after {:?}",
            started.elapsed()
        );
    });
}

const CONCURRENT_ECHO: &str = "ten_thousand_concurrent_connections_echo_every_byte";
const ECHO_ADDR: &str = "GORT_NET_TEST_ECHO_ADDR";
const ECHO_CONNECTIONS: &str = "GORT_NET_TEST_ECHO_CONNECTIONS";

#[test]
fn ten_thousand_concurrent_connections_echo_every_byte() {
    if gort_suite::is_child(CONCURRENT_ECHO) {
        match std::env::var(ECHO_ADDR) {
            Ok(addr) => {
                let connections = std::env::var(ECHO_CONNECTIONS).unwrap().parse().unwrap();
                run_concurrent_clients(addr.parse().unwrap(), connections);
            }
            Err(_) => {
                let connections = connections_that_fit(10_000);
                let rounds = if long_tests() { 5 } else { 1 };
                for _ in 0..rounds {
                    serve_concurrent_echo(connections);
                }
            }
        }
        return;
    }
    let started = Instant::now();
    let child = gort_suite::run_child(CONCURRENT_ECHO, &[]);
    let stdout = String::from_utf8_lossy(&child.stdout);
    let stderr = String::from_utf8_lossy(&child.stderr);
    eprint!("{stderr}");
    assert!(
        child.status.success() && stdout.contains("1 passed"),
        "child run: {}\n{stdout}\n{stderr}",
        child.status
    );
    eprintln!("concurrent echo: {:?} in all", started.elapsed());
}

#[test]
fn a_listener_queues_a_burst_larger_than_std_s_backlog() {
    // Go listens with the system's maximum backlog; std with 128. Beyond the backlog the kernel
    // drops SYNs (the connect waits for seconds), or under load completes the handshake by SYN
    // cookie and then drops or resets the connection.
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map_or(4096, |max| max.trim().parse().unwrap());
    let burst = somaxconn.min(512);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let backlog = accept_queue(&listener).1;
    let connects: Vec<_> = (0..burst)
        .map(
            |n| match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
                Ok(socket) => socket,
                Err(error) => {
                    panic!("connect {n} of {burst} before any accept: {error} (backlog {backlog})")
                }
            },
        )
        .collect();
    for client in &connects {
        let (server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap(), "accepted in order");
        assert_echoed_once(client, &server);
    }
}

#[test]
fn a_half_closed_client_still_reads_the_reply_sent_after_its_end_of_stream() {
    run(|| {
        let (mut client, server) = tcp_pair();
        let server = gort::spawn(move || {
            let mut server = server;
            let mut request = Vec::new();
            server.read_to_end(&mut request).unwrap();
            server
                .write_all(format!("got {} bytes", request.len()).as_bytes())
                .unwrap();
            request
        });
        client.write_all(b"the whole request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let write_after_shutdown = client.write(b"more").unwrap_err();
        assert_eq!(write_after_shutdown.kind(), io::ErrorKind::BrokenPipe);
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "got 17 bytes");
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0, "end of stream again");
        assert_eq!(server.join().unwrap(), b"the whole request");
    });
}

/// Makes closing `socket` reset the connection (`SO_LINGER` with a zero timeout).
fn set_linger_zero(socket: &impl AsRawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads one `linger` of the size given from a valid local.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

/// Parks a goroutine in a read of `socket`, runs `reset` (which resets the connection from the
/// other end), and answers the read's outcome.
fn read_across_a_reset(socket: Arc<TcpStream>, reset: impl FnOnce()) -> io::Result<usize> {
    let reader = gort::spawn(move || (&*socket).read(&mut [0; 64]));
    wait_until_parked_in_io(reader.id());
    reset();
    reader.join().unwrap()
}

fn assert_reset(outcome: io::Result<usize>) {
    let kind = outcome.expect_err("a reset connection").kind();
    assert_eq!(kind, io::ErrorKind::ConnectionReset);
}

fn assert_reset_or_broken<T: std::fmt::Debug>(outcome: io::Result<T>) {
    let kind = outcome.expect_err("a reset connection").kind();
    assert!(
        matches!(
            kind,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        "{kind:?}"
    );
}

#[test]
fn closing_with_unread_data_resets_the_peer_parked_in_read() {
    run(|| {
        let (client, server) = tcp_pair();
        (&client).write_all(b"never read").unwrap();
        // The data is in the server's queue: closing now discards it, which resets.
        assert!(server.peek(&mut [0; 1]).unwrap() > 0);
        let outcome = read_across_a_reset(Arc::new(client), || drop(server));
        assert_reset(outcome);
    });
}

#[test]
fn a_linger_zero_close_resets_the_peer_and_fails_its_writes() {
    run(|| {
        let (client, server) = tcp_pair();
        let client = Arc::new(client);
        set_linger_zero(&server);
        assert_reset(read_across_a_reset(Arc::clone(&client), || drop(server)));
        assert_reset_or_broken((&*client).write(b"after the reset"));
    });
}

#[test]
fn a_writer_parked_on_a_full_socket_fails_when_the_peer_resets() {
    run(|| {
        let (client, server) = tcp_pair();
        // The peer never reads: the writer fills the buffers, then parks.
        let writer = gort::spawn(move || -> io::Result<()> {
            let chunk = [0x5a; 64 * 1024];
            loop {
                (&client).write_all(&chunk)?;
            }
        });
        wait_until_parked_in_io(writer.id());
        set_linger_zero(&server);
        drop(server);
        assert_reset_or_broken(writer.join().unwrap());
    });
}

/// Checks that `op` fails with `TimedOut`, not before `timeout` and not long after.
fn assert_times_out<T: std::fmt::Debug>(timeout: Duration, op: impl FnOnce() -> io::Result<T>) {
    let started = Instant::now();
    let error = op().expect_err("the operation should time out");
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
    assert!(elapsed >= timeout, "timed out early: {elapsed:?}");
    assert!(elapsed < timeout + LATENESS, "timed out late: {elapsed:?}");
}

#[test]
fn tcp_read_timeout_fires_not_early_in_goroutines_and_threads() {
    on_thread_and_in_goroutine(|| {
        let (client, _server) = tcp_pair();
        client.set_read_timeout(Some(SHORT_TIMEOUT)).unwrap();
        assert_eq!(client.read_timeout().unwrap(), Some(SHORT_TIMEOUT));
        assert_times_out(SHORT_TIMEOUT, || (&client).read(&mut [0; 8]));
    });
}

#[test]
fn tcp_write_timeout_fires_when_the_peer_never_reads_in_goroutines_and_threads() {
    on_thread_and_in_goroutine(|| {
        let (client, _server) = tcp_pair();
        client.set_write_timeout(Some(SHORT_TIMEOUT)).unwrap();
        let chunk = [7; 64 * 1024];
        // Each write that fits returns at once; the one that finds the buffers full times out.
        loop {
            let started = Instant::now();
            match (&client).write(&chunk) {
                Ok(n) => assert!(n > 0),
                Err(error) => {
                    let elapsed = started.elapsed();
                    assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
                    assert!(elapsed >= SHORT_TIMEOUT, "timed out early: {elapsed:?}");
                    assert!(elapsed < SHORT_TIMEOUT + LATENESS, "late: {elapsed:?}");
                    break;
                }
            }
        }
    });
}

#[test]
fn udp_read_timeout_fires_not_early_in_goroutines_and_threads() {
    on_thread_and_in_goroutine(|| {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(SHORT_TIMEOUT)).unwrap();
        assert_times_out(SHORT_TIMEOUT, || socket.recv_from(&mut [0; 8]));
    });
}

/// Parks a goroutine in a read of one end of `pair` (the other end stays open and silent), then
/// shuts it down `how`, through the same socket or a `try_clone` of it: the read must end.
fn assert_shutdown_wakes_a_parked_reader<S: Stream>(pair: (S, S), how: Shutdown, via_clone: bool)
where
    for<'a> &'a S: Read,
{
    run(move || {
        let (socket, _silent_peer) = pair;
        let socket = Arc::new(socket);
        let clone = via_clone.then(|| socket.try_clone().unwrap());
        let reader = gort::spawn({
            let socket = Arc::clone(&socket);
            move || (&*socket).read(&mut [0; 16])
        });
        wait_until_parked_in_io(reader.id());
        clone.as_ref().unwrap_or(&*socket).shutdown(how).unwrap();
        match reader.join().unwrap() {
            Ok(n) => assert_eq!(n, 0, "read data nobody sent"),
            Err(e) => assert_ne!(e.kind(), io::ErrorKind::TimedOut, "the read was not woken"),
        }
    });
}

/// Every way of shutting a parked reader's socket: read or both halves, shared or cloned.
const SHUTDOWNS: [(Shutdown, bool); 4] = [
    (Shutdown::Read, false),
    (Shutdown::Both, false),
    (Shutdown::Read, true),
    (Shutdown::Both, true),
];

#[test]
fn shutdown_wakes_a_goroutine_parked_in_a_tcp_read() {
    for (how, via_clone) in SHUTDOWNS {
        assert_shutdown_wakes_a_parked_reader(tcp_pair(), how, via_clone);
    }
}

#[test]
fn shutdown_wakes_a_goroutine_parked_in_a_unix_stream_read() {
    for (how, via_clone) in SHUTDOWNS {
        assert_shutdown_wakes_a_parked_reader(unix_pair(), how, via_clone);
    }
}

/// The `round`th datagram of a UDP exchange.
fn datagram(round: usize) -> Vec<u8> {
    format!("datagram {round} ")
        .repeat(round % 7 + 1)
        .into_bytes()
}

/// Answers `rounds` datagrams, each reversed, to whoever sent it.
fn reflect_udp(socket: &UdpSocket, rounds: usize) {
    let mut buf = [0; 1024];
    for _ in 0..rounds {
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        buf[..n].reverse();
        assert_eq!(socket.send_to(&buf[..n], from).unwrap(), n);
    }
}

/// Reverses `bytes`.
fn reversed(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().rev().copied().collect()
}

#[test]
fn udp_send_to_and_recv_from_round_trip_between_goroutines() {
    run(|| {
        let rounds = 100;
        let server = UdpSocket::bind("127.0.0.1:0").unwrap().with_safety_net();
        let server_addr = server.local_addr().unwrap();
        let reflector = gort::spawn(move || reflect_udp(&server, rounds));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap().with_safety_net();
        let mut buf = [0; 1024];
        for round in 0..rounds {
            let sent = datagram(round);
            assert_eq!(client.send_to(&sent, server_addr).unwrap(), sent.len());
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&reversed(&sent)[..], server_addr));
        }
        reflector.join().unwrap();
    });
}

#[test]
fn udp_connected_send_and_recv_round_trip_between_a_goroutine_and_a_thread() {
    bounded(|| {
        let rounds = 100;
        let on_thread = UdpSocket::bind("127.0.0.1:0").unwrap().with_safety_net();
        let in_goroutine = UdpSocket::bind("127.0.0.1:0").unwrap().with_safety_net();
        on_thread
            .connect(in_goroutine.local_addr().unwrap())
            .unwrap();
        in_goroutine
            .connect(on_thread.local_addr().unwrap())
            .unwrap();
        let reflector = gort::spawn(move || {
            let mut buf = [0; 1024];
            for _ in 0..rounds {
                let n = in_goroutine.recv(&mut buf).unwrap();
                buf[..n].reverse();
                in_goroutine.send(&buf[..n]).unwrap();
            }
        });
        let mut buf = [0; 1024];
        for round in 0..rounds {
            let sent = datagram(round);
            assert_eq!(on_thread.send(&sent).unwrap(), sent.len());
            let n = on_thread.recv(&mut buf).unwrap();
            assert_eq!(buf[..n], reversed(&sent));
        }
        reflector.join().unwrap();
    });
}

#[test]
fn udp_peek_from_wakes_and_leaves_the_datagram_queued() {
    run(|| {
        let receiver = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap().with_safety_net());
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peeker = gort::spawn({
            let receiver = Arc::clone(&receiver);
            move || {
                let mut buf = [0; 64];
                let (n, from) = receiver.peek_from(&mut buf).unwrap();
                (buf[..n].to_vec(), from)
            }
        });
        wait_until_parked_in_io(peeker.id());
        sender
            .send_to(b"peeked", receiver.local_addr().unwrap())
            .unwrap();
        let sender_addr = sender.local_addr().unwrap();
        assert_eq!(peeker.join().unwrap(), (b"peeked".to_vec(), sender_addr));
        let mut buf = [0; 64];
        let (n, from) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"peeked"[..], sender_addr));
    });
}

/// A fresh directory for socket files, removed with its contents on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("gort-net-{}-{tag}-{unique}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn unix_stream_listener_and_pair_round_trip() {
    bounded(|| {
        let dir = TempDir::new("stream");
        let path = dir.join("echo.sock");
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(&*path));
        let clients = 4;
        let server = gort::spawn(move || {
            let echoes: Vec<_> = listener
                .incoming()
                .take(clients)
                .map(|socket| {
                    let socket = socket.unwrap().with_safety_net();
                    gort::spawn(move || echo_until_eof(socket).unwrap())
                })
                .collect();
            for echo in echoes {
                echo.join().unwrap();
            }
        });
        // Half the clients are goroutines, half plain threads.
        let connect_and_check = |index: usize, path: &Path| {
            let socket = UnixStream::connect(path).unwrap().with_safety_net();
            assert_eq!(socket.peer_addr().unwrap().as_pathname(), Some(path));
            assert_echoed(&socket, &payload(index));
        };
        let goroutines: Vec<_> = (0..clients / 2)
            .map(|index| {
                let path = path.clone();
                gort::spawn(move || connect_and_check(index, &path))
            })
            .collect();
        for index in clients / 2..clients {
            connect_and_check(index, &path);
        }
        for client in goroutines {
            client.join().unwrap();
        }
        server.join().unwrap();

        let (on_thread, in_goroutine) = unix_pair();
        let echo = gort::spawn(move || echo_until_eof(in_goroutine).unwrap());
        assert_echoed(&on_thread, &payload(7));
        echo.join().unwrap();
        drop(dir);
        assert!(!path.exists(), "the socket directory is removed");
    });
}

#[test]
fn unix_datagrams_round_trip_bound_unbound_and_paired() {
    bounded(|| {
        let dir = TempDir::new("dgram");
        let server_path = dir.join("server.sock");
        let client_path = dir.join("client.sock");
        run(move || {
            let server = UnixDatagram::bind(&server_path).unwrap().with_safety_net();
            let server = Arc::new(server);
            // A bound sender can be answered at its path.
            let answering = gort::spawn({
                let server = Arc::clone(&server);
                move || {
                    let mut buf = [0; 64];
                    let (n, from) = server.recv_from(&mut buf).unwrap();
                    let from = from.as_pathname().expect("a bound sender").to_owned();
                    buf[..n].reverse();
                    server.send_to(&buf[..n], from).unwrap();
                }
            });
            wait_until_parked_in_io(answering.id());
            let client = UnixDatagram::bind(&client_path).unwrap().with_safety_net();
            client.send_to(b"to the server", &server_path).unwrap();
            let mut buf = [0; 64];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"revres eht ot");
            assert_eq!(from.as_pathname(), Some(&*server_path));
            answering.join().unwrap();

            // An unbound sender is anonymous.
            let unbound = UnixDatagram::unbound().unwrap();
            unbound.send_to(b"anonymous", &server_path).unwrap();
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"anonymous");
            assert!(from.is_unnamed());
        });

        // A pair, between a goroutine and this plain thread.
        let (on_thread, in_goroutine) = UnixDatagram::pair().unwrap();
        let (on_thread, in_goroutine) =
            (on_thread.with_safety_net(), in_goroutine.with_safety_net());
        let reflector = gort::spawn(move || {
            let mut buf = [0; 64];
            let n = in_goroutine.recv(&mut buf).unwrap();
            buf[..n].reverse();
            in_goroutine.send(&buf[..n]).unwrap();
        });
        on_thread.send(b"paired").unwrap();
        let mut buf = [0; 64];
        let n = on_thread.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"deriap");
        reflector.join().unwrap();
    });
}

#[test]
fn tcp_works_on_plain_threads_without_goroutines() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..3 {
            let (socket, _) = listener.accept().unwrap();
            echo_until_eof(socket.with_safety_net()).unwrap();
        }
    });
    let client = std::thread::spawn(move || {
        for index in 0..3 {
            let socket = TcpStream::connect(addr).unwrap().with_safety_net();
            socket.set_nodelay(true).unwrap();
            assert_echoed(&socket, &payload(index));
        }
    });
    client.join().unwrap();
    server.join().unwrap();
}

#[test]
fn a_socket_moves_between_plain_threads_and_goroutines() {
    bounded(|| {
        let (client, server) = tcp_pair(); // made on this plain thread
        // In a goroutine, the read parks on the netpoller until this thread writes.
        let reader = gort::spawn(move || {
            let mut buf = [0; 5];
            (&server).read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"hello");
            server
        });
        wait_until_parked_in_io(reader.id());
        (&client).write_all(b"hello").unwrap();
        let server = reader.join().unwrap();
        // Back on a plain thread, the same (now registered) socket waits in poll(2).
        let writer = gort::spawn(move || (&client).write_all(b"world").map(|()| client));
        let mut buf = [0; 5];
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"world");
        let client = writer.join().unwrap().unwrap();
        // And the goroutine's end can move to a thread too.
        std::thread::spawn(move || assert_echoed_once(&client, &server))
            .join()
            .unwrap();
    });
}

/// `a` writes a byte that `b` reads.
fn assert_echoed_once(a: &TcpStream, b: &TcpStream) {
    (&*a).write_all(b"!").unwrap();
    let mut buf = [0; 1];
    (&*b).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"!");
}

fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL only reads the flags of `fd`, which the caller keeps open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL: {}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// Hands `socket` to std (checking it comes back in blocking mode) and takes it back.
fn through_std<G, S>(socket: G) -> G
where
    S: From<G> + AsRawFd,
    G: From<S>,
{
    let handed = S::from(socket);
    assert!(!is_nonblocking(handed.as_raw_fd()), "std got non-blocking");
    G::from(handed)
}

/// Hands `socket` out as a raw fd and as an `OwnedFd` (checking both are in blocking mode) and
/// takes it back.
fn through_fds<G>(socket: G) -> G
where
    G: IntoRawFd + FromRawFd + From<OwnedFd>,
    OwnedFd: From<G>,
{
    let fd = socket.into_raw_fd();
    assert!(!is_nonblocking(fd), "the raw fd is non-blocking");
    // SAFETY: `fd` is the open socket `into_raw_fd` just gave up; nothing else owns it.
    let socket = unsafe { G::from_raw_fd(fd) };
    let owned = OwnedFd::from(socket);
    assert!(
        !is_nonblocking(owned.as_raw_fd()),
        "the OwnedFd is non-blocking"
    );
    G::from(owned)
}

/// `socket` through std and fds and back: it still works.
fn round_trip_conversions<G, S>(socket: G) -> G
where
    S: From<G> + AsRawFd,
    G: From<S> + IntoRawFd + FromRawFd + From<OwnedFd>,
    OwnedFd: From<G>,
{
    through_fds(through_std::<G, S>(socket))
}

#[test]
fn conversions_to_std_and_fds_hand_out_blocking_sockets_that_convert_back() {
    run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let listener = round_trip_conversions::<_, std::net::TcpListener>(listener);
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let client = round_trip_conversions::<_, std::net::TcpStream>(client);
        let server = round_trip_conversions::<_, std::net::TcpStream>(server);
        assert_echoed_once(&client.with_safety_net(), &server.with_safety_net());

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp = round_trip_conversions::<_, std::net::UdpSocket>(udp);
        udp.send_to(b"u", udp.local_addr().unwrap()).unwrap();
        assert_eq!(udp.with_safety_net().recv(&mut [0; 4]).unwrap(), 1);

        let dir = TempDir::new("convert");
        let path = dir.join("listener.sock");
        let unix_listener = UnixListener::bind(&path).unwrap();
        let unix_listener =
            round_trip_conversions::<_, std::os::unix::net::UnixListener>(unix_listener);
        let unix_client = UnixStream::connect(&path).unwrap();
        let (unix_server, _) = unix_listener.accept().unwrap();
        let mut unix_client =
            round_trip_conversions::<_, std::os::unix::net::UnixStream>(unix_client);
        unix_client.write_all(b"x").unwrap();
        let mut got = [0; 1];
        unix_server.with_safety_net().read_exact(&mut got).unwrap();

        let (a, b) = UnixDatagram::pair().unwrap();
        let a = round_trip_conversions::<_, std::os::unix::net::UnixDatagram>(a);
        a.send(b"d").unwrap();
        assert_eq!(b.with_safety_net().recv(&mut [0; 4]).unwrap(), 1);
    });
}

#[test]
fn a_socket_waited_on_in_a_goroutine_still_works_after_a_trip_through_std() {
    run(|| {
        let (client, mut server) = tcp_pair();
        for round in 0..3u8 {
            // The read parks, so the socket is registered with the poller before each trip.
            let reader = gort::spawn(move || {
                let mut buf = [0; 1];
                (&server).read_exact(&mut buf).unwrap();
                assert_eq!(buf, [round]);
                server
            });
            wait_until_parked_in_io(reader.id());
            (&client).write_all(&[round]).unwrap();
            let std_server = std::net::TcpStream::from(reader.join().unwrap());
            assert!(!is_nonblocking(std_server.as_raw_fd()));
            // A std socket the user made non-blocking is still waited on in goroutines.
            std_server.set_nonblocking(true).unwrap();
            server = TcpStream::from(std_server).with_safety_net();
        }
    });
}

fn assert_would_block<T: std::fmt::Debug>(outcome: io::Result<T>) {
    let error = outcome.expect_err("nothing to do at once");
    assert_eq!(error.kind(), io::ErrorKind::WouldBlock, "{error}");
}

#[test]
fn nonblocking_mode_returns_would_block_at_once() {
    on_thread_and_in_goroutine(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        assert_would_block(listener.accept());
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (client, server) = (client.with_safety_net(), server.with_safety_net());

        client.set_nonblocking(true).unwrap();
        let started = Instant::now();
        assert_would_block((&client).read(&mut [0; 8]));
        assert!(started.elapsed() < LATENESS, "{:?}", started.elapsed());
        // Back to blocking-style: the read waits for the data.
        client.set_nonblocking(false).unwrap();
        assert_echoed_once(&server, &client);

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap().with_safety_net();
        udp.set_nonblocking(true).unwrap();
        assert_would_block(udp.recv_from(&mut [0; 8]));

        let (a, _b) = unix_pair();
        a.set_nonblocking(true).unwrap();
        assert_would_block((&a).read(&mut [0; 8]));
        let (d, _e) = UnixDatagram::pair().unwrap();
        d.set_nonblocking(true).unwrap();
        assert_would_block(d.recv(&mut [0; 8]));
    });
}

/// An address where nothing listens (a port just released).
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    on_thread_and_in_goroutine(|| {
        let addr = closed_port();
        let error = TcpStream::connect(addr).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused, "{error}");
        let error = TcpStream::connect_timeout(&addr, SAFETY_NET).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused, "{error}");
    });
}

/// The length and the limit of `listener`'s accept queue (`TCP_INFO` of a listening socket).
fn accept_queue(listener: &impl AsRawFd) -> (u32, u32) {
    // SAFETY: tcp_info is plain integers, for which all zeros is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, and its length into `len`.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", io::Error::last_os_error());
    (info.tcpi_unacked, info.tcpi_sacked)
}

/// A listener that answers no more connects: its backlog cut to 0 and one connection queued,
/// so the kernel drops further SYNs. Answers it and the queued connection.
fn unanswering_listener() -> (std::net::TcpListener, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen on a listening socket only changes its backlog.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
    assert_eq!(rc, 0, "listen: {}", io::Error::last_os_error());
    let queued = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let deadline = Instant::now() + SAFETY_NET;
    while accept_queue(&listener).0 == 0 {
        assert!(Instant::now() < deadline, "the connection was never queued");
        std::thread::yield_now();
    }
    (listener, queued)
}

#[test]
fn connect_timeout_to_a_listener_that_never_answers_times_out() {
    on_thread_and_in_goroutine(|| {
        let (listener, _queued) = unanswering_listener();
        let addr = listener.local_addr().unwrap();
        assert_times_out(SHORT_TIMEOUT, || {
            TcpStream::connect_timeout(&addr, SHORT_TIMEOUT)
        });
        assert_eq!(accept_queue(&listener), (1, 0), "the SYN was dropped");
    });
}

#[test]
fn connect_timeout_to_an_unroutable_address_gives_up_in_time() {
    on_thread_and_in_goroutine(|| {
        let unroutable: SocketAddr = "10.255.255.1:9".parse().unwrap();
        let timeout = Duration::from_millis(100);
        let started = Instant::now();
        let outcome = TcpStream::connect_timeout(&unroutable, timeout);
        let elapsed = started.elapsed();
        match outcome {
            Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                assert!(elapsed >= timeout, "timed out early: {elapsed:?}");
            }
            // A sandbox may have no route (an error at once) or a proxy that answers any
            // address (a connection): either way, no hang.
            other => eprintln!("connect_timeout to {unroutable}: {other:?} after {elapsed:?}"),
        }
        assert!(elapsed < timeout + LATENESS, "gave up late: {elapsed:?}");
    });
}
