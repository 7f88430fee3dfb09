// Command kill measures what a kill -9 of one node costs the survivors:
// -nodes peersession node processes (bench/cmd/server, Async; three by
// default, named a, b, c, ...; with -copies k in partitioned mode)
// clustered on 127.0.0.1, a paced round-robin load over them (non-sticky:
// each client's next request goes to the next node; a cookie jar per
// client, one session per client, so every read follows the write the
// client made on another node), then SIGKILL of the last node. The
// balancer takes it out of its rotation at the moment of the kill (an
// ideal health check), so what is measured is the survivors' own latency:
// while the killed node is still a live member for them (it takes
// memberlist some seconds to declare it dead) and after.
//
// The -sessions clients (one per worker by default) are spread over
// -workers goroutines, each sending its clients' requests in turn; every
// session is created, and held on all its copies, before the load starts.
//
// Each round starts a fresh cluster and reports the survivors' request
// latency (p50, p99, max) and how many requests took FetchTimeout (100 ms,
// the library's default) or more, in windows: the last seconds before the
// kill, the first second after it, 1–5 s, 5–15 s, and from the moment all
// survivors had declared the node dead (its entry gone from their
// replication peers) to the end of the load. The windows by time since the
// kill and the last one overlap. It counts false "not found" (a client's
// session answered as missing: a logout), other 5xx, and lost writes; and
// it times when every session has its full copies on the survivors again,
// observed from outside (copies.go): each session's ID and holders from
// the server's /where (Store.Holders), checked against the placement the
// bench computes, and each survivor's copies from its /held (Store.All);
// full means every holder under the survivors' membership (Copies of
// them, or every survivor in full replication) has the session. After the
// load every client reads its session once more: one not found then is a
// session lost. With -rounds N it
// prints each round and the medians of the rounds; -out writes the
// markdown report.
//
// The rate (8,000 requests/s by default, what this 2-core machine serves
// with room to spare at three nodes) matters: the slower a client's next
// request, the more often the write it follows has already arrived, and a
// read that finds it asks no peer, dead or alive. At 3,000 requests/s on a
// quiet machine, a build whose reads waited on the killed peer showed it
// in a few requests; at 8,000, in 2–3% of them for the seconds before the
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
	nodes        int // node processes; the last one is killed
	copies       int // the nodes' ClusterConfig.Copies
	sessions     int // clients (sessions), at least one per worker
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
	verbose      bool // the nodes log their warnings (-v)
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "./server", "the bench server binary (bench/cmd/server)")
	flag.IntVar(&o.nodes, "nodes", 3, "node processes (at most 26); the last one is killed")
	flag.IntVar(&o.copies, "copies", 0, "the nodes' ClusterConfig.Copies: 0 full replication, 2 or more partitioned mode")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds, each on a fresh cluster")
	flag.IntVar(&o.workers, "workers", 16, "load goroutines, each sending its clients' requests in turn")
	flag.IntVar(&o.sessions, "sessions", 0, "clients, each with its own cookie jar and one session, spread over the workers (0: one per worker)")
	flag.Float64Var(&o.rate, "rate", 8000, "requests/s over all clients (paced)")
	flag.DurationVar(&o.warm, "warm", time.Second, "load before the measured window, not reported")
	flag.DurationVar(&o.before, "before", 5*time.Second, "measured load before the kill")
	flag.DurationVar(&o.after, "after", 15*time.Second, "load after the kill, at least")
	flag.DurationVar(&o.afterDead, "after-dead", 5*time.Second, "load after both survivors declared the node dead, at least")
	flag.DurationVar(&o.maxAfter, "max-after", 60*time.Second, "load after the kill, at most")
	flag.DurationVar(&o.fetchTimeout, "fetch-timeout", 100*time.Millisecond, "the nodes' ClusterConfig.FetchTimeout (the library's default), to count requests that took it")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Second, "bound on one request")
	flag.StringVar(&o.out, "out", "", "also write the markdown report here")
	flag.BoolVar(&o.verbose, "v", false, "the nodes log their warnings to stderr")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("kill: ")
	switch {
	case o.nodes < 2 || o.nodes > 26:
		log.Fatalf("-nodes %d: want 2 to 26 node processes", o.nodes)
	case o.copies == 1 || o.copies < 0:
		log.Fatalf("-copies %d: want 0 (full replication) or 2 or more (partitioned mode)", o.copies)
	case o.workers < 1 || o.sessions < 0 || o.rate <= 0:
		log.Fatalf("-workers %d, -sessions %d, -rate %v: want at least one worker, no negative sessions and a positive rate", o.workers, o.sessions, o.rate)
	}

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
