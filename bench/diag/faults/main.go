// Command faults prints what a page fault costs on this machine: it maps
// -mib of fresh anonymous memory, touches it one page at a time -rounds
// times (a fresh mapping each round) and prints the cost per page. A Go
// heap that grows, or a larger GOGC, pays this for every page it has not
// touched before.
//
//	go run ./diag/faults [-mib 256] [-rounds 3]    (in bench/)
package main

import (
	"flag"
	"fmt"
	"log"
	"syscall"
	"time"
)

func main() {
	mib := flag.Int("mib", 256, "memory touched per round, MiB")
	rounds := flag.Int("rounds", 3, "rounds")
	flag.Parse()
	for range *rounds {
		per, err := faultCost(*mib << 20)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d pages: %.2f µs per first touch\n", (*mib<<20)/syscall.Getpagesize(), float64(per)/1e3)
	}
}

// faultCost maps n bytes of fresh memory, writes one byte of each page
// and returns the mean time per page.
func faultCost(n int) (time.Duration, error) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	defer func() { _ = syscall.Munmap(b) }()
	page := syscall.Getpagesize()
	t0 := time.Now()
	for i := 0; i < n; i += page {
		b[i] = 1
	}
	return time.Since(t0) / time.Duration(n/page), nil
}
