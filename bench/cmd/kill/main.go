// Command kill measures what a kill -9 of one node costs the survivors:
// three peersession node processes (bench/cmd/server, Async) clustered on
// 127.0.0.1, a paced round-robin load over the three (non-sticky: every
// request goes to the next node; a cookie jar per client, one session per
// client, so every read follows the write the client made on another
// node), then SIGKILL of node c. The balancer takes c out of its rotation
// at the moment of the kill (an ideal health check), so what is measured is
// the survivors' own latency: while c is still a live member for them (it
// takes memberlist some seconds to declare it dead) and after.
//
// Each round starts a fresh cluster and reports the survivors' request
// latency (p50, p99, max) and how many requests took FetchTimeout (100 ms,
// the library's default) or more, in windows: the last seconds before the
// kill, the first second after it, 1–5 s, 5–15 s, and from the moment both
// survivors had declared c dead (its entry gone from their replication
// peers) to the end of the load. The windows by time since the kill and
// the last one overlap. With -rounds N it prints each round and the
// medians of the rounds; -out writes the markdown report.
//
// The rate (8,000 requests/s by default, what this 2-core machine serves
// with room to spare) matters: the slower a client's next request, the
// more often the write it follows has already arrived, and a read that
// finds it asks no peer, dead or alive. At 3,000 requests/s on a quiet
// machine, a build whose reads waited on the killed peer showed it in a
// few requests; at 8,000, in 2–3% of them for the seconds before the
// verdict.
//
// Every load loop is bounded by a duration and a request count, every
// request by a timeout; the nodes are stopped on return and killed by the
// kernel should this process die.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	server       string
	rounds       int
	workers      int
	rate         float64
	warm         time.Duration
	before       time.Duration
	after        time.Duration // load after the kill, at least
	afterDead    time.Duration // load after both survivors declared c dead, at least
	maxAfter     time.Duration // bound on the load after the kill
	fetchTimeout time.Duration
	timeout      time.Duration
	out          string
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "./server", "the bench server binary (bench/cmd/server)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds, each on a fresh three-node cluster")
	flag.IntVar(&o.workers, "workers", 16, "clients, each with its own cookie jar and one session")
	flag.Float64Var(&o.rate, "rate", 8000, "requests/s over all clients (paced)")
	flag.DurationVar(&o.warm, "warm", time.Second, "load before the measured window, not reported")
	flag.DurationVar(&o.before, "before", 5*time.Second, "measured load before the kill")
	flag.DurationVar(&o.after, "after", 15*time.Second, "load after the kill, at least")
	flag.DurationVar(&o.afterDead, "after-dead", 5*time.Second, "load after both survivors declared the node dead, at least")
	flag.DurationVar(&o.maxAfter, "max-after", 60*time.Second, "load after the kill, at most")
	flag.DurationVar(&o.fetchTimeout, "fetch-timeout", 100*time.Millisecond, "the nodes' ClusterConfig.FetchTimeout (the library's default), to count requests that took it")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "bound on one request")
	flag.StringVar(&o.out, "out", "", "also write the markdown report here")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("kill: ")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var rounds []*round
	for r := 1; r <= o.rounds; r++ {
		rd, err := runRound(ctx, &o, r)
		if err != nil {
			log.Fatalf("round %d: %v", r, err)
		}
		rounds = append(rounds, rd)
		fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", r, o.rounds, rd.brief())
	}
	rep := report(&o, rounds, time.Since(start))
	fmt.Print(rep)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
