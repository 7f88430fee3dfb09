// Command chaos is peersession's chaos harness (issue 21): three to five
// node processes, each in its own network namespace on a bridge when run
// as root (else on loopback, without the link faults), clients writing
// through every node all the time, and a nemesis that injects faults on a
// random schedule drawn from a printed seed: kill -9 and restart on the
// same data directory, SIGSTOP/SIGCONT, partitions of random halves with
// packets dropped, one-way partitions, netem latency and loss, a clock
// running ahead within and beyond the one-minute skew limit.
//
// After each fault is healed the clients pause, and the checker waits
// until every node holds the same data (the time to agree), then compares
// it with what the clients were told: in Sync mode no acknowledged write
// may be missing; in Async mode every loss must be accounted for by a
// kill -9 of the node that acknowledged it within 3 s after; no ended
// session (logout, a login's old ID, DestroyPrincipal) may come back. The
// nodes' memory, goroutines and sockets are sampled and must stay bounded.
//
//	chaos -duration 10m -seed 42 -nodes 3 -consistency sync -faults all
//	chaos -faults partition         # the heal figures of issue 20 alone
//
// A failing run prints its seed and schedule; the same -seed, -nodes and
// -faults replay the same faults in the same order. `chaos node` is the
// node process the harness starts (see node.go).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the harness's flags.
type options struct {
	duration    time.Duration
	seed        uint64
	nodes       int
	consistency string
	faults      []faultKind
	faultsFlag  string
	clients     int
	rate        float64
	agree       time.Duration // the target: every heal agreed within this of membership being whole
	agreeLimit  time.Duration // the longest wait for agreement
	netns       string
	out         string
	dir         string
	nodeLog     string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		runNode(os.Args[2:])
		return
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long the nemesis runs")
	flag.Uint64Var(&o.seed, "seed", 0, "the schedule's seed (0: a random one, printed)")
	flag.IntVar(&o.nodes, "nodes", 3, "node processes, 3 to 5")
	flag.StringVar(&o.consistency, "consistency", "sync", "sync or async")
	flag.StringVar(&o.faultsFlag, "faults", defaultFaults, "fault kinds: a comma-separated list of "+kindList()+", or all")
	flag.IntVar(&o.clients, "clients", 8, "concurrent clients")
	flag.Float64Var(&o.rate, "rate", 20, "operations per second per client")
	flag.DurationVar(&o.agree, "agree", 5*time.Second, "every heal must be agreed within this once membership is whole again")
	flag.DurationVar(&o.agreeLimit, "agree-limit", 30*time.Second, "the longest wait for agreement after a heal")
	flag.StringVar(&o.netns, "netns", "auto", "auto (namespaces when root), on, or off (loopback: no link faults)")
	flag.StringVar(&o.out, "out", "", "write the markdown report here")
	flag.StringVar(&o.nodeLog, "node-log", "warn", "the nodes' log level in DIR/nodes.log: debug, info, warn or error")
	flag.StringVar(&o.dir, "dir", "", "working directory for data directories, key and node logs (default: a temporary one, removed after a passing run)")
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
	}
	if err != nil || !ok {
		fmt.Fprintf(os.Stderr, "chaos: FAILED; replay with: %s\n", o.replay())
		os.Exit(1)
	}
}

func kindList() string {
	var s []string
	for _, k := range allFaults {
		s = append(s, string(k))
	}
	return strings.Join(s, ",")
}

// validate checks the flags and draws the seed if none was given.
func (o *options) validate() error {
	if o.nodes < 3 || o.nodes > 5 {
		return fmt.Errorf("-nodes %d: want 3 to 5", o.nodes)
	}
	if o.consistency != "sync" && o.consistency != "async" {
		return fmt.Errorf("-consistency %q: want sync or async", o.consistency)
	}
	if o.duration <= 0 || o.clients <= 0 || o.rate <= 0 {
		return fmt.Errorf("-duration, -clients and -rate must be positive")
	}
	kinds, err := parseFaults(o.faultsFlag)
	if err != nil {
		return err
	}
	switch o.netns {
	case "auto":
		if os.Geteuid() == 0 {
			o.netns = "on"
		} else {
			o.netns = "off"
		}
	case "on", "off":
	default:
		return fmt.Errorf("-netns %q: want auto, on or off", o.netns)
	}
	if o.netns == "on" && os.Geteuid() != 0 {
		return fmt.Errorf("-netns on needs root (ip netns)")
	}
	if o.netns == "off" {
		var kept []faultKind
		for _, k := range kinds {
			if !slices.Contains(needsNetns, k) {
				kept = append(kept, k)
			}
		}
		if len(kept) == 0 {
			return fmt.Errorf("-faults %s: %v need network namespaces: run as root, or choose others", o.faultsFlag, needsNetns)
		}
		if len(kept) < len(kinds) {
			fmt.Printf("chaos: on loopback (not root, or -netns off): no %v faults\n", needsNetns)
		}
		kinds = kept
	}
	o.faults = kinds
	if o.seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.seed = binary.LittleEndian.Uint64(b[:])>>1 | 1
	}
	return nil
}

// replay is the command line that runs the same schedule again.
func (o options) replay() string {
	return fmt.Sprintf("bench/run.sh chaos -seed %d -duration %v -nodes %d -consistency %s -faults %s",
		o.seed, o.duration, o.nodes, o.consistency, o.faultsFlag)
}

// run starts the cluster, the clients, the sampler and the nemesis, runs
// the final check, and reports; ok is false when a check failed.
func run(ctx context.Context, o options) (ok bool, err error) {
	fmt.Printf("chaos: seed %d, %v, %d nodes, %s, faults %v, %d clients × %v ops/s, network %s\n",
		o.seed, o.duration, o.nodes, o.consistency, o.faults, o.clients, o.rate, map[string]string{"on": "namespaces", "off": "loopback"}[o.netns])
	fmt.Printf("chaos: replay with: %s\n", o.replay())
	self, err := os.Executable()
	if err != nil {
		return false, err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "peersession-chaos."); err != nil {
			return false, err
		}
		defer func() {
			if ok && err == nil {
				os.RemoveAll(dir)
			} else {
				fmt.Fprintf(os.Stderr, "chaos: node logs and data kept in %s\n", dir)
			}
		}()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	logf, err := os.Create(dir + "/nodes.log")
	if err != nil {
		return false, err
	}
	defer logf.Close()

	var nw network = loopback{}
	if o.netns == "on" {
		var netem bool
		if nw, netem, err = newNetns(o.nodes); err != nil {
			return false, err
		}
		if !netem && slices.Contains(o.faults, faultNetem) {
			if len(o.faults) == 1 {
				nw.Close()
				return false, fmt.Errorf("-faults %s: this kernel has no tc netem (CONFIG_NET_SCH_NETEM)", o.faultsFlag)
			}
			o.faults = slices.DeleteFunc(slices.Clone(o.faults), func(k faultKind) bool { return k == faultNetem })
			fmt.Println("chaos: this kernel has no tc netem (CONFIG_NET_SCH_NETEM): no netem faults")
		}
	}
	defer func() {
		if cerr := nw.Close(); cerr != nil {
			fmt.Fprintln(os.Stderr, "chaos: removing the namespaces:", cerr)
		}
	}()
	c, err := newCluster(self, nw, o.nodes, o.consistency, dir, logf)
	if err != nil {
		return false, err
	}
	c.logLevel = o.nodeLog
	defer c.stopAll()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = c.startAll(startCtx)
	cancel()
	if err != nil {
		return false, err
	}

	begin := time.Now()
	opsf, err := os.Create(dir + "/ops.log")
	if err != nil {
		return false, err
	}
	defer opsf.Close()
	opsw := bufio.NewWriter(opsf)
	defer opsw.Flush()
	w := &workload{rate: o.rate, ledger: newLedger(), opsLog: &opsLog{w: opsw}}
	for i := range c.nodes {
		w.urls = append(w.urls, c.url(i))
	}
	for range 2 {
		nv, _, ok := post(ctx, w.urls[0]+"/w?k=s&v=init", "")
		if !ok {
			return false, fmt.Errorf("creating a shared session on n1 failed")
		}
		w.shared = append(w.shared, nv)
	}
	smp := &sampler{c: c, interval: 5 * time.Second, begin: begin}
	runCtx, stopRun := context.WithTimeout(ctx, o.duration)
	defer stopRun()
	smp.start(runCtx)
	w.start(runCtx, o.clients, o.seed)
	nem := &nemesis{c: c, w: w, sched: newSchedule(o.seed, o.faults, o.nodes), limit: o.agreeLimit, out: os.Stdout}
	nerr := nem.run(runCtx)
	stopRun()
	w.wait()
	smp.wait()

	// The final check: every fault healed, no client writing.
	final, ferr := nem.check(step{Kind: "final"}, time.Now())
	if nerr == nil {
		nerr = ferr
	}
	smp.once(context.Background())
	r := report{o: o, begin: begin, run: time.Since(begin), nem: nem, final: final, ledger: w.ledger, samples: smp.all()}
	ok = r.print(os.Stdout)
	if !ok || nerr != nil {
		fmt.Println("chaos: the schedule run:")
		for _, s := range nem.done {
			fmt.Println("  ", s)
		}
	}
	if o.out != "" {
		if werr := r.writeMarkdown(o.out); werr != nil && nerr == nil {
			nerr = werr
		}
	}
	return ok, nerr
}
