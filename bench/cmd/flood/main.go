// Command flood runs the flood probes of issue 19 against node processes
// of bench/cmd/server on 127.0.0.1 (two nodes with a cluster key, fresh for
// each probe) and reports what each node's memory, CPU and counters did:
//
//	flood churn      one client re-posting /login (RenewID) as fast as it
//	                 can: logins/s, RSS growth of both nodes, tombstones,
//	                 with a small -max-tombstones and with the default
//	flood gossip     K connections to node A's gossip TCP port, each
//	                 declaring an encrypted push/pull of 20,000,000 bytes
//	                 and sending filler slowly: A's peak RSS against its
//	                 baseline, the connections A kept open
//	flood stamps     cookies with forged version stamps at R requests/s:
//	                 node A's peer fetches, node B's CPU and bytes written
//	flood handshake  M silent connections held to node A's replication
//	                 stream port while node B restarts: seconds until B
//	                 serves again and both see each other
//	flood all        the four in turn (what bench/run.sh flood runs)
//
// Every load loop is bounded by a duration and a count, every network call
// by a timeout; the nodes are stopped on return, on error and on SIGINT or
// SIGTERM (and killed by the kernel should this process die). Figures that
// repeat (per-second samples) are reported as medians. -out writes the
// markdown report to a file as well as stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// options are every probe's flags.
type options struct {
	server  string
	out     string
	verbose bool

	churnDur  time.Duration
	churnWarm time.Duration
	churnMax  int
	churnCap  int
	churnRuns string

	gossipConns int
	gossipDur   time.Duration
	gossipLen   int
	gossipRate  int
	gossipMax   int
	rssCapMiB   int
	strangerSrc string
	strangerDur time.Duration

	stampsDur     time.Duration
	stampsRate    int
	stampsWorkers int
	stampsPad     int

	hsConns   int
	hsTimeout time.Duration
	hsMax     int
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.server, "server", "", "the bench server binary (bench/cmd/server); empty: 'server' beside this binary")
	fs.StringVar(&o.out, "out", "", "also write the markdown report to this file")
	fs.BoolVar(&o.verbose, "v", false, "nodes log to stderr (default: a log file in the temporary directory, removed on exit)")

	fs.DurationVar(&o.churnDur, "churn-duration", 7*time.Second, "churn: how long the client logs in, per run")
	fs.DurationVar(&o.churnWarm, "churn-warmup", 2*time.Second, "churn: the first part of each run, left out of the growth rate")
	fs.IntVar(&o.churnMax, "churn-max", 2_000_000, "churn: at most this many logins per run")
	fs.IntVar(&o.churnCap, "churn-cap", 5000, "churn: the small MaxTombstones of the capped run")
	fs.StringVar(&o.churnRuns, "churn-runs", "cap,default", "churn: which runs (cap, default)")

	fs.IntVar(&o.gossipConns, "gossip-conns", 60, "gossip: concurrent connections to node A's gossip port")
	fs.DurationVar(&o.gossipDur, "gossip-duration", 10*time.Second, "gossip: how long the connections are kept up (from 127.0.0.1)")
	fs.IntVar(&o.gossipLen, "gossip-len", 20_000_000, "gossip: the length each connection declares")
	fs.IntVar(&o.gossipRate, "gossip-rate", 2_500_000, "gossip: filler bytes/s per connection")
	fs.IntVar(&o.gossipMax, "gossip-max", 200, "gossip: at most this many connections opened per worker")
	fs.StringVar(&o.strangerSrc, "stranger-src", "127.0.0.2", "gossip: the loopback source address of the second run, one no member has (empty: no second run)")
	fs.DurationVar(&o.strangerDur, "stranger-duration", 5*time.Second, "gossip: how long the second run floods")
	fs.IntVar(&o.rssCapMiB, "rss-cap", 4096, "gossip: stop sending filler while node A's RSS is above this (MiB), to keep the machine up")

	fs.DurationVar(&o.stampsDur, "stamps-duration", 2500*time.Millisecond, "stamps: length of each phase")
	fs.IntVar(&o.stampsRate, "stamps-rate", 2000, "stamps: requests/s to node A (paced, all workers together)")
	fs.IntVar(&o.stampsWorkers, "stamps-workers", 16, "stamps: client connections")
	fs.IntVar(&o.stampsPad, "stamps-pad", 60_000, "stamps: bytes of the real session's padding value (near the 64 KiB cap)")

	fs.IntVar(&o.hsConns, "hs-conns", 80, "handshake: silent connections held to node A's stream port")
	fs.DurationVar(&o.hsTimeout, "hs-timeout", 10*time.Second, "handshake: how long B's restart is waited for under the flood (then the flood stops)")
	fs.IntVar(&o.hsMax, "hs-max", 5000, "handshake: at most this many connections opened per worker")
}

// probe is one subcommand's probe.
type probe struct {
	name string
	run  func(*env, *options) *section
}

var probes = []probe{
	{"churn", runChurn},
	{"gossip", runGossip},
	{"stamps", runStamps},
	{"handshake", runHandshake},
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("flood: ")
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		log.Fatal("usage: flood churn|gossip|stamps|handshake|all [flags] (flood all -h lists them)")
	}
	sub := os.Args[1]
	var sel []probe
	for _, p := range probes {
		if sub == "all" || sub == p.name {
			sel = append(sel, p)
		}
	}
	if len(sel) == 0 {
		log.Fatalf("unknown probe %q: want churn, gossip, stamps, handshake or all", sub)
	}
	var o options
	fs := flag.NewFlagSet("flood "+sub, flag.ExitOnError)
	o.register(fs)
	_ = fs.Parse(os.Args[2:])
	if o.server == "" {
		self, err := os.Executable()
		if err != nil {
			log.Fatal(err)
		}
		o.server = strings.TrimSuffix(self, "flood") + "server"
	}
	if _, err := os.Stat(o.server); err != nil {
		log.Fatalf("the server binary: %v (build bench/cmd/server and pass -server)", err)
	}

	e, err := newEnv(o.server, o.verbose)
	if err != nil {
		log.Fatal(err)
	}
	// Stop the nodes on SIGINT/SIGTERM too; should this process die
	// anyway, the kernel kills them (Pdeathsig).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		log.Printf("%v: stopping the nodes", s)
		e.close()
		os.Exit(130)
	}()

	started := time.Now()
	var secs []*section
	failed := false
	for _, p := range sel {
		log.Printf("== %s", p.name)
		t0 := time.Now()
		s := p.run(e, &o)
		s.elapsed = time.Since(t0)
		e.stopAll() // whatever the probe left, on error too
		if s.err != nil {
			failed = true
			log.Printf("%s: %v", p.name, s.err)
		}
		secs = append(secs, s)
	}
	e.close()

	report := render(secs, time.Since(started))
	fmt.Print(report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			log.Fatal(err)
		}
		log.Printf("wrote %s", o.out)
	}
	if failed {
		os.Exit(1)
	}
}

// section is one probe's part of the report.
type section struct {
	title    string
	setup    string     // what ran, one paragraph
	table    [][]string // header row first
	notes    []string
	summary  [][3]string // probe, figure, bound
	err      error
	elapsed  time.Duration
	extraTbl [][]string // a second table, if any
}

func render(secs []*section, total time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Flood probes (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "`bench/run.sh flood` (bench/cmd/flood), %s; %d cores shared with other work, %s. "+
		"Each probe starts its own two node processes of bench/cmd/server (`-variant peer`, a generated cluster key, "+
		"everything on 127.0.0.1) and stops them at its end. Total %s.\n\n",
		commitLine(), runtime.NumCPU(), runtime.Version(), total.Round(time.Second))
	b.WriteString("| probe | figure | bound |\n|---|---|---|\n")
	for _, s := range secs {
		if s.err != nil {
			fmt.Fprintf(&b, "| %s | **failed**: %s | |\n", s.title, cell(s.err.Error()))
		}
		for _, r := range s.summary {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", r[0], r[1], r[2])
		}
	}
	for _, s := range secs {
		fmt.Fprintf(&b, "\n#### %s (%s)\n\n", s.title, s.elapsed.Round(100*time.Millisecond))
		if s.setup != "" {
			b.WriteString(s.setup + "\n\n")
		}
		for _, t := range [][][]string{s.table, s.extraTbl} {
			if len(t) == 0 {
				continue
			}
			writeTable(&b, t)
			b.WriteString("\n")
		}
		for _, n := range s.notes {
			b.WriteString("- " + n + "\n")
		}
		if s.err != nil {
			fmt.Fprintf(&b, "- **failed**: %s\n", cell(s.err.Error()))
		}
	}
	return b.String()
}

func writeTable(b *strings.Builder, t [][]string) {
	for i, row := range t {
		b.WriteString("|")
		for _, c := range row {
			b.WriteString(" " + cell(c) + " |")
		}
		b.WriteString("\n")
		if i == 0 {
			b.WriteString("|")
			for j := range row {
				if j == 0 {
					b.WriteString("---|")
				} else {
					b.WriteString("--:|")
				}
			}
			b.WriteString("\n")
		}
	}
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

// commitLine names the commit the library was built from, and whether the
// working tree differed from it.
func commitLine() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "log", "-1", "--format=%h %cs").Output()
	if err != nil {
		return "commit unknown"
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return "commit unknown"
	}
	s := fmt.Sprintf("commit %s (%s)", f[0], f[1])
	// Only the library's Go files (not its tests) matter to the nodes.
	top, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return s
	}
	st, err := exec.CommandContext(ctx, "git", "-C", strings.TrimSpace(string(top)), "status", "--porcelain", "--untracked-files=no", "--",
		"*.go", ":(exclude)*_test.go", ":(exclude)bench/**", ":(exclude)examples/**", ":(exclude)adapters/**", ":(exclude)e2e/**").Output()
	if err == nil && len(strings.TrimSpace(string(st))) > 0 {
		s += " with uncommitted library changes in the working tree"
	}
	return s
}
