// Command scale measures replication as the cluster grows (issue 23), full
// replication or, with -copies n, partitioned mode (each session on n
// nodes; each write is made on a node that holds its session, and the
// visibility probes count only the sessions the last node holds):
// N nodes in this one process on 127.0.0.1, for each N of -nodes,
//
//   - CPU ms per 1,000 writes at a fixed cluster-wide rate (-rate, each
//     write one key of -key-size bytes updated in a session of the node
//     it is made on, the nodes in turn), the process's CPU (writers
//     included) from the first write until replication caught up; the
//     idle CPU of the same nodes (no writes, as long, per second); and
//     the replication CPU, the first minus the idle rate over the same
//     span, per 1,000 writes (what the flatness target is about:
//     the idle cost of N nodes' gossip and timers grows with N whatever
//     the writes);
//   - bytes, frames and stream system calls (writes + reads) per write,
//     summed over the nodes (ReplicationStats);
//   - the visibility on the last node of sessions created on the others
//     while the load runs (probes, 200/s), p50 and p99;
//   - the highest rate whose probes' p99 stays at most 100 ms (-max-p99),
//     searched by doubling from 1,000 writes/s, then two bisections,
//     bounded by -max-rate;
//   - the live heap per node once the cluster holds -sessions sessions of
//     -value-size bytes and has been idle for -idle, as a multiple of the
//     payload (the process's heap after GC divided by N), and net of the
//     heap per node just before those sessions were created, as a
//     multiple of the node's share of the payload (all of it, or Copies/N
//     partitioned);
//   - the time a further node takes to join that cluster (New to
//     WaitReady).
//
// With -procs (and -repl, the bench/cmd/repl binary), the fixed-rate
// rounds run again on clusters of `repl node` processes, one per node, in
// the same mode (-copies): each updates one -key-size key of sessions it
// owns at -rate/N a second, CPU is summed over the processes from /proc
// (procs.go).
//
// The fixed-rate figures are medians of -rounds rounds. Every phase is
// bounded (-duration of writes, then at most -drain for replication to
// catch up). One process holds all N nodes, so they share the machine's
// cores and the figures at large N are bound by the machine, not the
// network.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	nodes      []int
	rounds     int
	rate       int
	keySize    int
	poolSize   int
	dur        time.Duration
	searchDur  time.Duration
	drain      time.Duration
	maxRate    int
	maxP99     time.Duration
	sessions   int
	valueSize  int
	idle       time.Duration
	memLimit   time.Duration
	workers    int
	skipSearch bool
	searchAt   []int // sizes the rate search runs at (nil: every size)
	copies     int   // ClusterConfig.Copies: 0 full replication, n >= 2 partitioned
}

func main() {
	var o options
	nodes := flag.String("nodes", "2,4,8,16,32", "cluster sizes, comma-separated")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds at the fixed rate (medians)")
	flag.IntVar(&o.rate, "rate", 5000, "fixed cluster-wide writes/s")
	flag.IntVar(&o.keySize, "key-size", 200, "bytes of the key each write sets")
	flag.IntVar(&o.poolSize, "pool", 4096, "sessions updated by the writes, over all nodes")
	flag.DurationVar(&o.dur, "duration", 3*time.Second, "writes per fixed-rate round")
	flag.DurationVar(&o.searchDur, "search-duration", 2*time.Second, "writes per step of the rate search")
	flag.DurationVar(&o.drain, "drain", 10*time.Second, "longest wait for replication to catch up after a phase")
	flag.IntVar(&o.maxRate, "max-rate", 512_000, "highest rate the search tries")
	flag.DurationVar(&o.maxP99, "max-p99", 100*time.Millisecond, "visibility p99 a sustained rate keeps")
	flag.IntVar(&o.sessions, "sessions", 50_000, "sessions held for the memory figure and the join (0: skip both)")
	flag.IntVar(&o.valueSize, "value-size", 1024, "bytes per session in the memory phase")
	flag.DurationVar(&o.idle, "idle", 5*time.Second, "idle time before the heap is read")
	flag.IntVar(&o.workers, "workers", 8, "writer goroutines")
	flag.DurationVar(&o.memLimit, "mem-limit", 3*time.Minute, "longest wait for the nodes to hold the memory phase's sessions (past it, the table says so)")
	flag.BoolVar(&o.skipSearch, "no-search", false, "skip the rate search")
	searchAt := flag.String("search-at", "", "cluster sizes the rate search runs at, comma-separated (empty: every size of -nodes)")
	flag.IntVar(&o.copies, "copies", 0, "ClusterConfig.Copies: 0 full replication; 2 or more partitioned mode (writes go to a holder of their session, as a route-aware balancer would send them)")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of each size's fixed-rate rounds to this file + .N")
	flag.StringVar(&memProfile, "memprofile", "", "write a heap profile of each memory phase to this file + .N")
	out := flag.String("out", "results/scale.md", "markdown output ('' for none)")
	procs := flag.String("procs", "", "cluster sizes to measure again with every node its own process (repl node), comma-separated")
	repl := flag.String("repl", "", "the bench/cmd/repl binary, for -procs")
	flag.Parse()
	o.nodes = sizes("-nodes", *nodes)
	procSizes := sizes("-procs", *procs)
	o.searchAt = sizes("-search-at", *searchAt)
	if len(procSizes) > 0 && *repl == "" {
		log.Fatal("scale: -procs needs -repl, the bench/cmd/repl binary (go build ./cmd/repl)")
	}

	var rows []row
	for _, n := range o.nodes {
		r, err := measure(n, o)
		if err != nil {
			log.Fatalf("scale: %d nodes: %v", n, err)
		}
		rows = append(rows, r)
	}
	var prows []procRow
	for _, n := range procSizes {
		r, err := measureProcs(n, *repl, o)
		if err != nil {
			log.Fatalf("scale: %d processes: %v", n, err)
		}
		prows = append(prows, r)
	}
	md := report(rows, o) + reportProcs(prows, o)
	fmt.Print(md)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// sizes parses a comma-separated list of cluster sizes (flag name for
// errors); empty is none.
func sizes(name, v string) []int {
	var out []int
	if strings.TrimSpace(v) == "" {
		return nil
	}
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			log.Fatalf("scale: %s %q: want cluster sizes of at least 2, comma-separated", name, v)
		}
		out = append(out, n)
	}
	return out
}

// row is one cluster size's figures.
type row struct {
	n                            int
	cpuPer1k                     float64 // ms, the whole process
	idleCPU                      float64 // ms of CPU per second with no writes
	netCPUPer1k                  float64 // ms, net of the idle CPU over the same span
	bytes, frames, writes, reads float64 // per write
	p50, p99                     time.Duration
	achieved                     float64
	maxRate                      int // 0: not searched
	maxFailed                    bool
	mem                          memResult
	memDone                      bool
	memFailed                    bool // the nodes did not hold every session within -mem-limit
	start                        time.Duration
}

// measure runs every phase on a cluster of n nodes.
func measure(n int, o options) (row, error) {
	r := row{n: n}
	t0 := time.Now()
	c, err := startCluster(n, o.copies, 2*time.Minute)
	if err != nil {
		return r, err
	}
	defer c.close()
	r.start = time.Since(t0)
	log.Printf("scale: %d nodes up in %v", n, r.start.Round(time.Millisecond))
	p, err := c.makePool(o.poolSize, o.keySize)
	if err != nil {
		return r, err
	}

	stopProfile := func() {}
	if cpuProfile != "" {
		if stopProfile, err = startCPUProfile(fmt.Sprintf("%s.%d", cpuProfile, n)); err != nil {
			return r, err
		}
	}
	var cpu, idle, net, bytes, frames, writes, reads, p50, p99, ach []float64
	for i := range o.rounds {
		ph := c.load(p, o.rate, o.workers, o.keySize, o.dur, o.drain)
		// The same nodes with no writes, as long as the writes ran: their
		// idle cost (probes, gossip, timers), subtracted from the phase's
		// CPU for the replication's own.
		idleRate := c.idleCPU(o.dur, o.drain)
		w := float64(max(ph.writes, 1))
		cpu = append(cpu, ph.cpu.Seconds()*1e3/w*1000)
		idle = append(idle, idleRate*1e3)
		net = append(net, (ph.cpu.Seconds()-idleRate*ph.wall.Seconds())*1e3/w*1000)
		bytes = append(bytes, float64(ph.c.bytesOut)/w)
		frames = append(frames, float64(ph.c.framesOut)/w)
		writes = append(writes, float64(ph.c.writes)/w)
		reads = append(reads, float64(ph.c.reads)/w)
		p50 = append(p50, float64(quantile(ph.vis, 0.5)))
		p99 = append(p99, float64(quantile(ph.vis, 0.99)))
		ach = append(ach, ph.achieved)
		log.Printf("scale: %d nodes, round %d: idle cpu %.0f ms/s, net %.0f ms/1k", n, i+1, idle[i], net[i])
		log.Printf("scale: %d nodes, round %d: %d writes (%.0f/s, %d errors), cpu %.0f ms/1k, %.0f B, %.2f frames, %.2f writes, %.2f reads per write, vis p50 %v p99 %v (%d/%d probes), settled %v, dropped %d, retries %d",
			n, i+1, ph.writes, ph.achieved, ph.errors, cpu[i], bytes[i], frames[i], writes[i], reads[i],
			quantile(ph.vis, 0.5), quantile(ph.vis, 0.99), len(ph.vis), ph.probes, ph.settled, ph.c.dropped, ph.c.retries)
	}
	r.cpuPer1k, r.bytes, r.frames, r.writes, r.reads = median(cpu), median(bytes), median(frames), median(writes), median(reads)
	r.idleCPU, r.netCPUPer1k = median(idle), median(net)
	r.p50, r.p99, r.achieved = time.Duration(median(p50)), time.Duration(median(p99)), median(ach)
	stopProfile()

	if !o.skipSearch && (o.searchAt == nil || slices.Contains(o.searchAt, n)) {
		r.maxRate, r.maxFailed = c.search(p, o)
	}
	if o.sessions > 0 {
		m, err := c.fillAndMeasure(o.sessions, o.valueSize, o.idle, o.memLimit)
		if err != nil {
			// Not the end of the run: the table says so for this size.
			log.Printf("scale: %d nodes: %v", n, err)
			r.memFailed = true
			return r, nil
		}
		r.mem, r.memDone = m, true
		log.Printf("scale: %d nodes: heap per node %.2f× payload (before the sessions %.1f MiB, after %.1f MiB), filled in %v, join %v", n, m.heapPerNode/float64(m.payload),
			m.baseHeap/(1<<20), m.heapPerNode/(1<<20), m.fill.Round(time.Millisecond), m.join.Round(time.Millisecond))
	}
	return r, nil
}

// search returns the highest rate found sustained (see phase.sustained):
// doubling from 1,000 writes/s until a rate fails or passes maxRate, then
// two bisections between the last pass and the first failure. failed
// reports that even 1,000 writes/s was not sustained.
func (c *cluster) search(p *pool, o options) (best int, failed bool) {
	try := func(rate int) bool {
		ph := c.load(p, rate, o.workers, o.keySize, o.searchDur, o.drain)
		ok := ph.sustained(o.maxP99)
		log.Printf("scale: %d nodes, search %d/s: achieved %.0f/s, p99 %v, settled %v, dropped %d: sustained %v",
			len(c.nodes), rate, ph.achieved, quantile(ph.vis, 0.99), ph.settled, ph.c.dropped, ok)
		return ok
	}
	fail := 0
	for rate := 1000; rate <= o.maxRate; rate *= 2 {
		if !try(rate) {
			fail = rate
			break
		}
		best = rate
	}
	if best == 0 {
		return 0, true
	}
	for range 2 {
		if fail == 0 {
			break
		}
		mid := (best + fail) / 2
		if try(mid) {
			best = mid
		} else {
			fail = mid
		}
	}
	return best, false
}

// median returns the median of v (the lower middle one of an even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
