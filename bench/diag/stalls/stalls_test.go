package main

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/trace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Probes whose [created, arrived] intervals overlap form one stall; those
// no slower than the threshold, or created before the round, are left out.
func TestStallsGroupOverlappingSlowProbes(t *testing.T) {
	const ms = int64(time.Millisecond)
	start := 1000 * ms
	raw := fmt.Sprintf("%d %d\n%d %d\n%d %d\n%d %d\n%d %d\n%d %d\n",
		start-ms, 9000, // before the round
		start+10*ms, 8000, // stall 1: 10..18
		start+12*ms, 7000, // stall 1: 12..19
		start+15*ms, 1000, // fast
		start+30*ms, 6000, // stall 2: 30..36
		start+40*ms, 5000, // exactly the threshold: not slow
	)
	got := stallsOf([]byte(raw), start, 5*time.Millisecond)
	require.Len(t, got, 2)
	assert.Equal(t, stall{span{start + 10*ms, start + 19*ms}, 2, 8 * time.Millisecond}, got[0])
	assert.Equal(t, stall{span{start + 30*ms, start + 36*ms}, 1, 6 * time.Millisecond}, got[1])
}

// readTrace understands what this Go's runtime/trace writes: the wall
// clock, the GC's mark phases, and goroutine states by role.
func TestReadTraceOfThisProcess(t *testing.T) {
	roleMarks = append(roleMarks, struct{ fn, role string }{"stalls.testWriter", "writer"})
	var buf bytes.Buffer
	require.NoError(t, trace.Start(&buf))
	before := time.Now().UnixNano()
	var wg sync.WaitGroup
	var mu sync.Mutex
	mu.Lock()
	wg.Go(func() { testWriter(&mu) })
	require.Eventually(t, func() bool { return waitingOnMutex("stalls.testWriter") }, 10*time.Second, time.Millisecond)
	mu.Unlock()
	wg.Wait()
	runtime.GC()
	after := time.Now().UnixNano()
	trace.Stop()

	tr, err := readTrace(buf.Bytes())
	require.NoError(t, err)
	require.NotEmpty(t, tr.marks, "runtime.GC ran a mark phase")
	for _, m := range tr.marks {
		assert.True(t, before <= m.from && m.from <= m.to && m.to <= after, "mark phase %v on the wall clock within [%d, %d]", m, before, after)
	}
	var blocked time.Duration
	for _, s := range tr.roles["writer"] {
		if s.what == "blocked" && s.where == "sync in stalls.testWriter" {
			assert.True(t, before <= s.from && s.to <= after, "state %v on the wall clock within [%d, %d]", s, before, after)
			blocked += time.Duration(s.to - s.from)
		}
	}
	assert.Positive(t, blocked, "the writer's wait for mu, among its states %v", tr.roles["writer"])
}

// waitingOnMutex reports whether a goroutine with fn on its stack waits
// for a sync.Mutex.
func waitingOnMutex(fn string) bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "[sync.Mutex.Lock") && strings.Contains(g, fn) {
			return true
		}
	}
	return false
}

// testWriter stands for a harness writer (the test adds it to roleMarks):
// it waits for mu.
//
//go:noinline
func testWriter(mu *sync.Mutex) {
	mu.Lock()
	defer mu.Unlock()
}

// during clips each state to the window, sums by state and place, drops
// what sums to under 1 ms, and lists the largest first.
func TestDuringSumsStatesWithinTheWindow(t *testing.T) {
	const ms = int64(time.Millisecond)
	tr := &traced{roles: map[string][]state{"sender": {
		{span{0, 10 * ms}, "running", ""},                      // 5 ms inside
		{span{10 * ms, 12 * ms}, "runnable", ""},               // 2 ms
		{span{12 * ms, 13 * ms}, "blocked", "select in x.run"}, // 1 ms
		{span{13 * ms, 14 * ms}, "runnable", ""},               // +1 ms: 3 ms
		{span{14 * ms, 14*ms + ms/2}, "syscall", "in y.write"}, // under 1 ms
		{span{20 * ms, 30 * ms}, "running", ""},                // after the window
	}}}
	got := tr.during("sender", span{5 * ms, 15 * ms})
	assert.Equal(t, []timeIn{
		{"running", 5 * time.Millisecond},
		{"runnable", 3 * time.Millisecond},
		{"blocked (select in x.run)", time.Millisecond},
	}, got)
	assert.Equal(t, "blocked (select in x.run) 1.0 ms", got[2].String())
}

// wakeLateness takes one sample per sleep, and a sleep never ends early.
func TestWakeLatenessSamplesEachSleep(t *testing.T) {
	late := wakeLateness(20*time.Millisecond, time.Millisecond)
	require.NotEmpty(t, late)
	assert.LessOrEqual(t, len(late), 21)
	for _, d := range late {
		assert.GreaterOrEqual(t, d, time.Duration(0))
	}
}
