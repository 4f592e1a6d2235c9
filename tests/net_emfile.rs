//! The example echo server's accept loop survives running out of file descriptors: with the
//! limit lowered so that a client's connection takes the last descriptor, the kernel still
//! completes that connection but the server's accept fails with `EMFILE`. The server backs off,
//! keeps serving the connections it has, and once descriptors are free again it accepts the
//! waiting client and new ones.
//!
//! A test binary of its own: it lowers the whole process's descriptor limit.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use gort::net::{TcpListener, TcpStream};

#[path = "../examples/echo_server.rs"]
#[allow(dead_code)]
mod echo_server;

/// How long any wait may take before the test calls it a hang.
const SAFETY_NET: Duration = Duration::from_secs(20);
/// Clients echoed while descriptors remain; each holds two (its socket and the server's).
const SERVED: u64 = 8;

fn fd_limits() -> libc::rlimit {
    let mut limits = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `limits`.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limits) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    limits
}

fn set_soft_fd_limit(soft: u64) {
    let limits = libc::rlimit {
        rlim_cur: soft,
        ..fd_limits()
    };
    // SAFETY: setrlimit reads one rlimit; a soft limit at most the hard one is always allowed.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limits) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

/// Whether descriptor `fd` is open (asked without opening one, as listing `/proc/self/fd`
/// would).
fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the flags of `fd`; a closed fd is reported as an error.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// The soft limit that leaves exactly `free` descriptors to open: the kernel hands out the
/// lowest free number, and only below the limit.
fn limit_leaving(free: u64) -> u64 {
    let mut unused = 0;
    let mut fd: RawFd = 0;
    loop {
        if !is_open(fd) {
            unused += 1;
            if unused == free {
                return u64::try_from(fd).unwrap() + 1;
            }
        }
        fd += 1;
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(SAFETY_NET)).unwrap();
    client.set_write_timeout(Some(SAFETY_NET)).unwrap();
    client
}

/// Checks that `message` comes back through the server.
fn assert_echoed(client: &TcpStream, message: &[u8]) {
    let mut client = client;
    client.write_all(message).unwrap();
    let mut back = vec![0; message.len()];
    client.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
}

/// A client the server accepted and echoed.
fn connect_echoed(addr: SocketAddr) -> TcpStream {
    let client = connect(addr);
    assert_echoed(&client, b"hello");
    client
}

/// What goroutine `id` waits for, as a goroutine dump shows it.
fn wait_state(id: gort::GoroutineId) -> String {
    let mut dump = Vec::new();
    gort::dump_goroutines(&mut dump).unwrap();
    let header = format!("goroutine {} [", id.as_u64());
    String::from_utf8_lossy(&dump)
        .lines()
        .find_map(|line| line.strip_prefix(&header)?.split(']').next())
        .map(str::to_owned)
        .unwrap_or_default()
}

#[test]
fn the_echo_server_survives_running_out_of_file_descriptors() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = gort::spawn(move || echo_server::serve(listener));
    // Warm-up: the runtime's threads and netpoller exist and a dump has read the symbols, so
    // none of them needs a descriptor later.
    drop(connect_echoed(addr));
    assert!(!wait_state(server.id()).is_empty());
    // The warm-up connection's goroutine has closed the server's side (else that descriptor
    // would free up later, and the limit below would leave one too many).
    let deadline = Instant::now() + SAFETY_NET;
    while gort::num_goroutines() > 1 {
        assert!(
            Instant::now() < deadline,
            "the warm-up connection was never closed"
        );
        std::thread::yield_now();
    }
    let original = fd_limits().rlim_cur;

    set_soft_fd_limit(limit_leaving(2 * SERVED + 1));
    let served: Vec<_> = (0..SERVED).map(|_| connect_echoed(addr)).collect();
    // The last descriptor: the kernel completes the connection, the server cannot accept it.
    let waiting = connect(addr);
    (&waiting).write_all(b"waiting").unwrap();
    let error = TcpStream::connect(addr).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EMFILE), "{error}");

    // The accept loop backs off (sleeps between attempts) instead of ending...
    let deadline = Instant::now() + SAFETY_NET;
    while wait_state(server.id()) != "sleep" {
        assert!(!server.is_finished(), "the accept loop ended");
        assert!(Instant::now() < deadline, "the server never backed off");
        std::thread::yield_now();
    }
    // ... its connections are still served, and the waiting client is not.
    for client in &served {
        assert_echoed(client, b"still served");
    }
    waiting.set_nonblocking(true).unwrap();
    let unanswered = (&waiting).read(&mut [0; 8]).unwrap_err();
    assert_eq!(unanswered.kind(), io::ErrorKind::WouldBlock, "{unanswered}");
    waiting.set_nonblocking(false).unwrap();

    // Closed connections free descriptors: the waiting client is accepted and echoed.
    drop(served);
    let mut echoed = [0; 7];
    (&waiting).read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"waiting");
    drop(connect_echoed(addr));
    set_soft_fd_limit(original);
    let after = connect_echoed(addr);
    assert_echoed(&waiting, b"still here");
    assert_echoed(&after, b"and the limit is back");
    assert!(!server.is_finished());
}
