package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// report renders the rows as markdown ("" if none: -nodes "" runs
// only -procs).
func report(rows []row, o options) string {
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	host, _ := os.Hostname()
	mode := "Full replication"
	if o.copies > 0 {
		mode = fmt.Sprintf("Partitioned mode (Copies %d; each write on a holder of its session, as a route-aware balancer sends it; probes counted on the last node only when it holds them)", o.copies)
	}
	fmt.Fprintf(&b, "### %s as the cluster grows (%s, bench/run.sh scale)\n\n", mode, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Machine: %s, %d cores shared with other work. All N nodes in one process on 127.0.0.1. "+
		"Fixed rate: %d writes/s cluster-wide for %v, each write one %d-byte key of one of %d sessions, on the nodes in turn; medians of %d rounds. "+
		"CPU, whole process: the process's (writers included) from the first write until replication caught up. Idle CPU: the same nodes, "+
		"once caught up, with no writes for %v (memberlist's probes and gossip, the engine's timers, anti-entropy), per second. Replication CPU: "+
		"the whole process's minus the idle rate over the same span, per 1,000 writes (the writes' own work, local commit included, and their replication). "+
		"Bytes, frames and system calls (stream writes + reads) per write: summed over the nodes. "+
		"Visibility: sessions created on the other nodes (%d/s) until the last node's OnCreate. "+
		"Max rate: highest with visibility p99 ≤ %v, nothing dropped and caught up within %v (doubling from 1,000/s, two bisections, %v each). "+
		"Heap per node: the process's live heap after GC ÷ N, with %d sessions of %d bytes held and %v idle, ÷ their payload (the total, "+
		"not a node's share). Net heap per node: the same minus the heap per node read just before those sessions were created (after the "+
		"same idle time: the nodes' fixed cost, the write pool, what the load phases left), ÷ the node's share of the payload (%s), "+
		"so a constant column means heap per node ∝ that share. Join: one more node, New to WaitReady.\n\n",
		host, runtime.NumCPU(), o.rate, o.dur, o.keySize, o.poolSize, o.rounds, o.dur, probeRate, o.maxP99, o.drain, o.searchDur, o.sessions, o.valueSize, o.idle, share(o.copies))
	b.WriteString("| nodes | CPU ms per 1,000 writes, whole process | idle CPU, ms per s | replication CPU ms per 1,000 writes (net of idle) | bytes sent per write | frames / syscalls per write | visible on the last node p50 / p99 | max writes/s with p99 ≤ 100 ms | heap per node ÷ payload | net heap per node ÷ its share | join |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		maxRate := "not searched"
		switch {
		case r.maxFailed:
			maxRate = "< 1k"
		case r.maxRate > 0:
			maxRate = fmt.Sprintf("%dk", r.maxRate/1000)
		}
		heap, netHeap, join := "-", "-", "-"
		if r.memFailed {
			heap = fmt.Sprintf("not all held within %v", o.memLimit)
		}
		if r.memDone {
			heap = fmt.Sprintf("%.2f×", r.mem.heapPerNode/float64(r.mem.payload))
			netHeap = fmt.Sprintf("%.2f×", (r.mem.heapPerNode-r.mem.baseHeap)/(float64(r.mem.payload)*shareOf(o.copies, r.n)))
			join = r.mem.join.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.0f | %.0f | %.2f / %.2f | %s / %s ms | %s | %s | %s | %s |\n",
			r.n, r.cpuPer1k, r.idleCPU, r.netCPUPer1k, r.bytes, r.frames, r.writes+r.reads, ms(r.p50), ms(r.p99), maxRate, heap, netHeap, join)
	}
	b.WriteString("\n")
	return b.String()
}

// shareOf is the share of the sessions a node of n holds: all of them in
// full replication (copies 0), copies/n partitioned.
func shareOf(copies, n int) float64 {
	if copies == 0 || copies >= n {
		return 1
	}
	return float64(copies) / float64(n)
}

// share describes shareOf for the report.
func share(copies int) string {
	if copies == 0 {
		return "all of it: full replication"
	}
	return fmt.Sprintf("%d/N of it: Copies %d", copies, copies)
}

// ms formats d in milliseconds.
func ms(d time.Duration) string {
	v := float64(d) / 1e6
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// reportProcs renders the separate-process rows as markdown ("" if none).
func reportProcs(rows []procRow, o options) string {
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Every node its own process (bench/cmd/repl's node, %s): each first creates %d/N sessions it owns (the first of Store.Holders; "+
		"partitioned, every write is then made on a holder of its session, as a route-aware balancer sends it), then updates one %d-byte key "+
		"of one of them per write at %d/N writes/s for %v, while the nodes but the last create probe sessions (%d/s in all) whose arrival the "+
		"last node times through OnCreate (partitioned: only the probes it holds). CPU, whole processes: all node processes' (/proc), writers "+
		"included, from the start of the writes until replication caught up on every node; idle: the same span again with no writes, per second; "+
		"replication CPU: the first minus the idle rate over the span, per 1,000 writes. Medians of %d rounds.\n\n",
		modeName(o.copies), o.poolSize, o.keySize, o.rate, o.dur, probeRate, o.rounds)
	b.WriteString("| nodes (processes) | CPU ms per 1,000 writes, whole processes | idle CPU, ms per s | replication CPU ms per 1,000 writes (net of idle) | bytes sent per write | frames / syscalls per write | visible on the last node p50 / p99 |\n")
	b.WriteString("|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %.0f | %.0f | %.0f | %.0f | %.2f / %.2f | %s / %s ms |\n",
			r.n, r.cpuPer1k, r.idleCPU, r.netCPUPer1k, r.bytes, r.frames, r.writes+r.reads, ms(r.p50), ms(r.p99))
	}
	b.WriteString("\n")
	return b.String()
}

// modeName names the replication mode of copies.
func modeName(copies int) string {
	if copies == 0 {
		return "full replication"
	}
	return fmt.Sprintf("partitioned mode, Copies %d", copies)
}
