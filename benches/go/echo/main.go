// The Go echo server beside gort's, tokio's and may's in `cargo bench --bench net`, which
// builds and runs it when Go is installed (it is never needed by the tests): one goroutine per
// connection, echoing what it reads through a 4096-byte buffer, with GOMAXPROCS 2. It prints
// the address it listens on (127.0.0.1, a free port, or the address given), then serves:
//
//	go run benches/go/echo/main.go [ADDR]
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
)

func echo(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	runtime.GOMAXPROCS(2)
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go echo(conn)
	}
}
