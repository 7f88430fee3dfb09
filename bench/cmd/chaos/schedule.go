package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// faultKind names one kind of fault the nemesis injects.
type faultKind string

// The fault kinds, in the order -faults lists them.
const (
	faultKill      faultKind = "kill"      // kill -9, then restart on the same data directory
	faultPause     faultKind = "pause"     // SIGSTOP, then SIGCONT
	faultPartition faultKind = "partition" // random halves, packets dropped both ways
	faultOneWay    faultKind = "oneway"    // random halves, packets dropped one way only
	faultNetem     faultKind = "netem"     // tc netem latency and loss on one node
	faultClock     faultKind = "clock"     // one node's clock ahead, within the 1-minute skew limit
	faultSkew      faultKind = "skew"      // one node's clock ahead, beyond the limit
)

// defaultFaults is -faults' default: every kind. (skew lost acknowledged
// writes until the clock fence: a node more than a minute ahead now
// refuses writes instead of stamping versions its peers refuse.)
const defaultFaults = "all"

// allFaults lists every kind; needsNetns those that need network
// namespaces (the loopback topology cannot cut one node off).
var (
	allFaults  = []faultKind{faultKill, faultPause, faultPartition, faultOneWay, faultNetem, faultClock, faultSkew}
	needsNetns = []faultKind{faultPartition, faultOneWay, faultNetem}
)

// parseFaults reads -faults: "all" or a comma-separated list of kinds.
func parseFaults(s string) ([]faultKind, error) {
	if s == "" || s == "all" {
		return allFaults, nil
	}
	var out []faultKind
	for _, f := range strings.Split(s, ",") {
		k := faultKind(strings.TrimSpace(f))
		if !slices.Contains(allFaults, k) {
			return nil, fmt.Errorf("-faults: unknown kind %q; want all or some of %v", k, allFaults)
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// step is one fault of the schedule: the nemesis waits Gap, injects the
// fault, holds it for Hold, then heals it.
type step struct {
	N    int // 1-based position in the schedule
	Kind faultKind
	Gap  time.Duration // quiet time before the fault
	Hold time.Duration // how long the fault lasts
	// Node is the target of kill, pause, netem, clock and skew.
	Node int
	// Side and Other split the nodes for partition and oneway (packets
	// from Side to Other are dropped; both ways for partition).
	Side, Other []int
	// Offset is the clock's lead for clock and skew.
	Offset time.Duration
	// Delay and Loss are netem's added latency and packet loss (percent).
	Delay time.Duration
	Loss  int
}

// String is the step as the schedule prints it: enough to see it again
// in a replay.
func (s step) String() string {
	var what string
	switch s.Kind {
	case faultKill, faultPause:
		what = fmt.Sprintf("n%d", s.Node+1)
	case faultPartition:
		what = fmt.Sprintf("%s | %s", names(s.Side), names(s.Other))
	case faultOneWay:
		what = fmt.Sprintf("%s -> %s dropped", names(s.Side), names(s.Other))
	case faultNetem:
		what = fmt.Sprintf("n%d delay %v loss %d%%", s.Node+1, s.Delay, s.Loss)
	case faultClock, faultSkew:
		what = fmt.Sprintf("n%d clock +%v", s.Node+1, s.Offset)
	}
	return fmt.Sprintf("#%d after %v: %s %s for %v", s.N, s.Gap, s.Kind, what, s.Hold)
}

// names prints node indexes as the nodes' names: {n1,n3}.
func names(idx []int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range idx {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "n%d", n+1)
	}
	b.WriteByte('}')
	return b.String()
}

// schedule draws the nemesis's steps from a seed: the same seed, kinds
// and node count give the same steps, whatever happens while they run,
// so that -seed replays a run's faults exactly.
type schedule struct {
	rng   *rand.Rand
	kinds []faultKind
	nodes int
	n     int
}

func newSchedule(seed uint64, kinds []faultKind, nodes int) *schedule {
	return &schedule{rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), kinds: kinds, nodes: nodes}
}

// next draws the next step.
func (sc *schedule) next() step {
	r := sc.rng
	sc.n++
	s := step{
		N:    sc.n,
		Kind: sc.kinds[r.IntN(len(sc.kinds))],
		Gap:  ms(1000 + r.IntN(2000)),
		Hold: ms(2000 + r.IntN(6000)),
		Node: r.IntN(sc.nodes),
	}
	switch s.Kind {
	case faultPartition, faultOneWay:
		perm := r.Perm(sc.nodes)
		k := 1 + r.IntN(sc.nodes/2) // the smaller side: 1 to half the nodes
		s.Side, s.Other = sorted(perm[:k]), sorted(perm[k:])
		if r.IntN(2) == 0 {
			s.Side, s.Other = s.Other, s.Side
		}
	case faultNetem:
		s.Delay = ms(20 + r.IntN(180))
		s.Loss = r.IntN(20)
	case faultClock:
		s.Offset = time.Duration(5+r.IntN(50)) * time.Second // under the 1-minute limit
	case faultSkew:
		s.Offset = time.Duration(65+r.IntN(60)) * time.Second // past it
	}
	return s
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func sorted(s []int) []int {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
