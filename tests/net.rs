//! gort::net: sockets that park goroutines.
use std::io::{Read, Write};

use gort::net::{TcpListener, TcpStream};

#[test]
fn echo_in_goroutines() {
    gort::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        gort::go! {
            for socket in listener.incoming() {
                let mut socket = socket.unwrap();
                gort::go! {
                    let mut buf = [0; 1024];
                    loop {
                        let n = socket.read(&mut buf).unwrap();
                        if n == 0 { break; }
                        socket.write_all(&buf[..n]).unwrap();
                    }
                };
            }
        };
        let clients: Vec<_> = (0..100)
            .map(|i| {
                gort::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    for j in 0..100u32 {
                        let msg = format!("{i}:{j};");
                        s.write_all(msg.as_bytes()).unwrap();
                        let mut back = vec![0; msg.len()];
                        s.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg.as_bytes());
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
}
