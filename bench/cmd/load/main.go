// Command load sends bounded HTTP load to the benchmark server and prints
// requests/s, p50/p99 latency and the error count (see package loadgen).
// It exits 1 if any request failed or answered a wrong counter.
//
//	load -url http://127.0.0.1:8080 [-url http://127.0.0.1:8081] -path /rw -duration 5s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/peersession/peersession/bench/loadgen"
)

type urls []string

func (u *urls) String() string     { return strings.Join(*u, ",") }
func (u *urls) Set(s string) error { *u = append(*u, s); return nil }

func main() {
	var targets urls
	flag.Var(&targets, "url", "server base URL; repeat to alternate between servers on every request")
	path := flag.String("path", "/rw", "/rw (read-write), /ro (read-only)")
	dur := flag.Duration("duration", 5*time.Second, "how long to send load")
	workers := flag.Int("workers", 16, "concurrent keep-alive clients")
	sessions := flag.Int("sessions", 64, "sessions each client creates and cycles through")
	noSessions := flag.Bool("no-sessions", false, "server has no sessions (ceiling): no cookies, no checks")
	asJSON := flag.Bool("json", false, "print the result as JSON")
	flag.Parse()
	if len(targets) == 0 {
		log.Fatal("load: give at least one -url")
	}
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Targets: targets, Path: *path, Duration: *dur, Workers: *workers, Sessions: *sessions,
		Write: *path == "/rw", Check: !*noSessions, NoSessions: *noSessions,
	})
	if err != nil {
		log.Fatal(err)
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(res)
	} else {
		fmt.Println(res)
	}
	if res.Errors > 0 || res.Mismatches > 0 {
		os.Exit(1)
	}
}
