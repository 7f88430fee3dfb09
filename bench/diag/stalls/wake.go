package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"runtime"
	"time"

	rd "github.com/peersession/peersession/bench/internal/repldrive"
)

// runWake is "stalls wake": the machine's own share of the stall report. In
// a process of its own (so that no node's Go scheduler is involved) and on
// one P, it sleeps -every at a time for -for and prints, as JSON figures,
// how late each sleep ended: what the machine alone costs a thread that is
// mostly idle while the nodes and the load run.
func runWake(args []string) {
	fs := flag.NewFlagSet("wake", flag.ExitOnError)
	d := fs.Duration("for", 3*time.Second, "how long to measure")
	every := fs.Duration("every", time.Millisecond, "each sleep")
	_ = fs.Parse(args)
	runtime.GOMAXPROCS(1)
	if err := json.NewEncoder(os.Stdout).Encode(rd.FiguresOf(wakeLateness(*d, *every))); err != nil {
		log.Fatal(err)
	}
}

// wakeLateness sleeps every at a time until d has passed and returns how
// much later than asked each sleep ended.
func wakeLateness(d, every time.Duration) []time.Duration {
	late := make([]time.Duration, 0, int(d/every)+1)
	for end := time.Now().Add(d); time.Now().Before(end); {
		t0 := time.Now()
		time.Sleep(every)
		late = append(late, time.Since(t0)-every)
	}
	return late
}
