// Go 1.19's numbers for gort's channel, lock, scheduler and timer benchmarks, measured the same
// way as benches/*.rs measure gort, tokio and may (medians of repeated runs). Go is never needed
// by the tests; run this beside `cargo bench` when Go is installed:
//
//	go run benches/go/main.go
//
// `go run benches/go/main.go first-batch` runs only the first batch of the deep-recursion
// benchmark, in this fresh process, for benches/stack_first_batch.sh.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// median runs f (which returns nanoseconds per operation) repeatedly and answers the median.
func median(runs int, f func() float64) float64 {
	samples := make([]float64, runs)
	for i := range samples {
		samples[i] = f()
	}
	sort.Float64s(samples)
	return samples[runs/2]
}

func perOp(ops int, f func()) float64 {
	start := time.Now()
	f()
	return float64(time.Since(start).Nanoseconds()) / float64(ops)
}

func cpuNanos() int64 {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
	return usage.Utime.Nano() + usage.Stime.Nano()
}

func spawnJoin() float64 {
	const batch = 10000
	return perOp(batch, func() {
		var wg sync.WaitGroup
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	})
}

func yields() float64 {
	const n = 100000
	return perOp(2*n, func() {
		var wg sync.WaitGroup
		wg.Add(2)
		for g := 0; g < 2; g++ {
			go func() {
				for i := 0; i < n; i++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
	})
}

func pingPong() float64 {
	const n = 10000
	return perOp(n, func() {
		ping, pong := make(chan uint64), make(chan uint64)
		go func() {
			for v := range ping {
				pong <- v
			}
		}()
		for i := 0; i < n; i++ {
			ping <- uint64(i)
			<-pong
		}
		close(ping)
	})
}

// channel sends 100,000 messages from `producers` to `consumers` over one bounded(1024) channel.
func channel(producers, consumers int) float64 {
	const messages = 100000
	return perOp(messages, func() {
		ch := make(chan uint64, 1024)
		var sent, received sync.WaitGroup
		sent.Add(producers)
		for p := 0; p < producers; p++ {
			go func() {
				for i := 0; i < messages/producers; i++ {
					ch <- uint64(i)
				}
				sent.Done()
			}()
		}
		received.Add(consumers)
		for c := 0; c < consumers; c++ {
			go func() {
				var sum uint64
				for v := range ch {
					sum += v
				}
				_ = sum
				received.Done()
			}()
		}
		sent.Wait()
		close(ch)
		received.Wait()
	})
}

func uncontended() float64 {
	const n = 1000
	var mu sync.Mutex
	counter := 0
	return perOp(n, func() {
		for i := 0; i < n; i++ {
			mu.Lock()
			counter++
			mu.Unlock()
		}
	})
}

func contended() float64 {
	const goroutines, increments = 16, 2000
	return perOp(goroutines*increments, func() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		counter := 0
		wg.Add(goroutines)
		for g := 0; g < goroutines; g++ {
			go func() {
				for i := 0; i < increments; i++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
	})
}

func sleepers() (wall, cpu float64) {
	const n = 100000
	start, cpuStart := time.Now(), cpuNanos()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			time.Sleep(time.Millisecond)
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(start).Nanoseconds()), float64(cpuNanos()-cpuStart) / n
}

// sink keeps the recursion's frames from being optimized away.
var sink byte

// recurse recurses `levels` deep with frames of about 1 KiB.
//
//go:noinline
func recurse(levels int) byte {
	var frame [1024]byte
	frame[levels%1024] = byte(levels)
	if levels == 0 {
		return frame[0]
	}
	return recurse(levels-1) + frame[1023]
}

// rssBytes answers the process's resident set size.
func rssBytes() int64 {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	fields := strings.Fields(string(statm))
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		panic(err)
	}
	return pages * int64(os.Getpagesize())
}

// deepThenPark spawns 10,000 goroutines that each recurse 64 KiB deep (64 frames of 1 KiB) and
// park; answers the time per goroutine until all are parked, and the resident bytes each adds.
func deepThenPark() (nanos, rss float64) {
	const n = 10000
	before := rssBytes()
	start := time.Now()
	var parked sync.WaitGroup
	parked.Add(n)
	release := make(chan struct{})
	var done sync.WaitGroup
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			sink += recurse(64)
			parked.Done()
			<-release
			done.Done()
		}()
	}
	parked.Wait()
	elapsed := time.Since(start)
	added := rssBytes() - before
	close(release)
	done.Wait()
	return float64(elapsed.Nanoseconds()) / n, float64(added) / n
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "first-batch" {
		nanos, rss := deepThenPark()
		fmt.Printf("first-batch go %.2f %.1f\n", nanos/1e3, rss/1024)
		return
	}
	fmt.Printf("%s, GOMAXPROCS=%d; medians\n", runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Printf("spawn+join, per goroutine (batches of 10,000): %.1f ns\n", median(21, spawnJoin))
	fmt.Printf("two goroutines yielding, per yield: %.1f ns\n", median(21, yields))
	fmt.Printf("ping-pong over two rendezvous channels, per round trip: %.1f ns\n", median(21, pingPong))
	fmt.Printf("bounded(1024) SPSC, per message: %.1f ns\n", median(21, func() float64 { return channel(1, 1) }))
	fmt.Printf("8 x 8 MPMC bounded(1024), per message: %.1f ns\n", median(21, func() float64 { return channel(8, 8) }))
	fmt.Printf("uncontended mutex lock+unlock, per pair: %.1f ns\n", median(101, uncontended))
	fmt.Printf("mutex contended by 16 goroutines, per increment: %.1f ns\n", median(21, contended))
	walls, cpus := make([]float64, 11), make([]float64, 11)
	for i := range walls {
		walls[i], cpus[i] = sleepers()
	}
	sort.Float64s(walls)
	sort.Float64s(cpus)
	fmt.Printf("sleep(1 ms) x 100,000 goroutines: wall %.1f ms per batch, CPU %.2f us per timer\n",
		walls[5]/1e6, cpus[5]/1e3)
	// The first batch, on fresh memory, gives the resident bytes (later batches reuse stacks).
	_, firstRss := deepThenPark()
	times := make([]float64, 11)
	for i := range times {
		times[i], _ = deepThenPark()
	}
	sort.Float64s(times)
	fmt.Printf("10,000 goroutines recursing 64 KiB deep then parking: %.2f us per goroutine, "+
		"%.1f KiB resident per parked goroutine (first batch)\n", times[5]/1e3, firstRss/1024)
}
