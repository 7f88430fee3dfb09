// Command soak is the sustained run between two nodes in two network
// namespaces joined by a veth pair (set up by run.sh soak). It runs inside
// namespace B, starts node A in namespace A and node B here, sends bounded
// load to node A for -duration, and reports errors, throughput, sockets in
// TIME_WAIT and connections opened per second in both namespaces.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
	"github.com/peersession/peersession/bench/loadgen"
)

func main() {
	server := flag.String("server", "./server", "the server binary")
	_ = flag.String("loadbin", "", "unused (the load runs in-process)")
	nsA := flag.String("ns-a", "", "namespace of node A")
	nsB := flag.String("ns-b", "", "namespace of node B and the load")
	addrA := flag.String("addr-a", "10.99.0.1", "node A's address (in ns-a)")
	addrB := flag.String("addr-b", "10.99.0.2", "node B's address (in ns-b)")
	keyFile := flag.String("key-file", "", "cluster key file")
	dur := flag.Duration("duration", 10*time.Minute, "load duration")
	workers := flag.Int("workers", 16, "clients")
	sessions := flag.Int("sessions", 64, "sessions per client")
	out := flag.String("out", "results/soak.md", "markdown output")
	inside := flag.Bool("inside", false, "internal: already running in ns-b")
	flag.Parse()

	if !*inside {
		// Re-run this program inside namespace B.
		args := append([]string{"netns", "exec", *nsB, os.Args[0], "-inside"}, os.Args[1:]...)
		cmd := exec.Command("ip", args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			log.Fatalf("soak: %v", err)
		}
		return
	}

	nodeArgs := func(name, bind string) []string {
		return []string{"-variant", "peer", "-node", name, "-bind", bind, "-gossip-port", "7946",
			"-key-file", *keyFile, "-http", bind + ":8080", "-v"}
	}
	a, err := proc.Start("node a", 30*time.Second, []string{"ip", "netns", "exec", *nsA}, *server, nodeArgs("a", *addrA)...)
	if err != nil {
		log.Fatalf("soak: %v", err)
	}
	defer a.Stop()
	b, err := proc.Start("node b", 60*time.Second, nil, *server, append(nodeArgs("b", *addrB), "-join", *addrA+":7946")...)
	if err != nil {
		log.Fatalf("soak: %v", err)
	}
	defer b.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for _, p := range []*proc.Proc{a, b} {
		if err := p.WaitPeers(ctx, 1); err != nil {
			log.Fatalf("soak: %v", err)
		}
	}
	cancel()

	opensA0, opensB0 := activeOpens(*nsA), activeOpens("")
	t0 := time.Now()
	done := make(chan loadgen.Result, 1)
	errc := make(chan error, 1)
	go func() {
		r, err := loadgen.Run(context.Background(), loadgen.Config{
			Targets: []string{a.URL}, Path: "/rw", Write: true, Check: true,
			Duration: *dur, Workers: *workers, Sessions: *sessions,
		})
		if err != nil {
			errc <- err
			return
		}
		done <- r
	}()
	var res loadgen.Result
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case res = <-done:
			break wait
		case err := <-errc:
			log.Fatalf("soak: load: %v", err)
		case <-tick.C:
			fmt.Fprintf(os.Stderr, "soak %v: TIME_WAIT A %d B %d, established A %d B %d\n", time.Since(t0).Round(time.Second),
				sockets(*nsA, "time-wait"), sockets("", "time-wait"), sockets(*nsA, "established"), sockets("", "established"))
		case <-time.After(*dur + 2*time.Minute):
			log.Fatal("soak: load did not end in time")
		}
	}
	el := time.Since(t0)
	opensA, opensB := activeOpens(*nsA)-opensA0, activeOpens("")-opensB0
	twA, twB := sockets(*nsA, "time-wait"), sockets("", "time-wait")
	estA, estB := sockets(*nsA, "established"), sockets("", "established")
	sa, _ := a.Stats(false)
	sb, _ := b.Stats(false)
	n := func(m map[string]any, p ...string) float64 { f, _ := proc.Get(m, p...).(float64); return f }

	var sb2 strings.Builder
	fmt.Fprintf(&sb2, "### Sustained run across a veth pair (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&sb2, "Node A in one network namespace (%s), node B and the load generator in another (%s), joined by a veth pair; "+
		"gossip and the replication stream encrypted with a cluster key. Load: %d keep-alive clients × %d sessions, read-write handler, against node A only, for %v. "+
		"Machine: 2 cores shared with other work.\n\n", *addrA, *addrB, *workers, *sessions, *dur)
	sb2.WriteString("| figure | value |\n|---|--:|\n")
	row := func(k string, v any) { fmt.Fprintf(&sb2, "| %s | %v |\n", k, v) }
	row("requests", res.Requests)
	row("requests/s", fmt.Sprintf("%.0f", res.RPS))
	row("p50 / p99 / max latency", fmt.Sprintf("%v / %v / %v", res.P50, res.P99, res.Max))
	row("errors (transport, non-2xx)", res.Errors)
	row("lost writes (wrong counter)", res.Mismatches)
	row("sessions on A / on B at the end", fmt.Sprintf("%.0f / %.0f", n(sa, "store", "Sessions"), n(sb, "store", "Sessions")))
	row("A→B changes sent / acked / dropped / failed sends", fmt.Sprintf("%.0f / %.0f / %.0f / %.0f",
		n(sa, "store", "Replication", "peers", "b", "Sent"), n(sa, "store", "Replication", "peers", "b", "Acked"),
		n(sa, "store", "Replication", "Dropped"), n(sa, "store", "Replication", "peers", "b", "Failed")))
	row("commit errors on A", n(sa, "store", "CommitErrors"))
	row("TCP connections opened/s, namespace A (ActiveOpens)", fmt.Sprintf("%.2f (%d in %v)", float64(opensA)/el.Seconds(), opensA, el.Round(time.Second)))
	row("TCP connections opened/s, namespace B (ActiveOpens; includes the load generator's)", fmt.Sprintf("%.2f (%d)", float64(opensB)/el.Seconds(), opensB))
	row("sockets in TIME_WAIT at the end, A / B", fmt.Sprintf("%d / %d", twA, twB))
	row("sockets ESTABLISHED at the end, A / B", fmt.Sprintf("%d / %d", estA, estB))
	verdict := "PASS"
	if res.Errors > 0 || res.Mismatches > 0 {
		verdict = "FAIL"
	}
	row("verdict (zero errors and zero lost writes)", verdict)
	fmt.Print(sb2.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(sb2.String()), 0o644); err != nil {
			log.Print(err)
		}
	}
	if verdict != "PASS" {
		a.Stop()
		b.Stop()
		os.Exit(1)
	}
}

// inNS runs a command in namespace ns ("" means this one) and returns its
// output.
func inNS(ns string, argv ...string) string {
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		log.Printf("soak: %v: %v", argv, err)
	}
	return string(out)
}

// activeOpens reads Tcp ActiveOpens from /proc/net/snmp of namespace ns.
func activeOpens(ns string) int64 {
	sc := bufio.NewScanner(strings.NewReader(inNS(ns, "cat", "/proc/net/snmp")))
	var header []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, h := range header {
			if h == "ActiveOpens" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return -1
}

// sockets counts TCP sockets in state in namespace ns.
func sockets(ns, state string) int {
	out := inNS(ns, "ss", "-Htan", "state", state)
	return strings.Count(out, "\n")
}
