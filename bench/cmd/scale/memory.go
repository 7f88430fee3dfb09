package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// memResult is what the memory phase measured.
type memResult struct {
	heapPerNode float64       // bytes of live heap per node, after GC
	baseHeap    float64       // the same before the sessions were created (the nodes' fixed cost, the write pool, what the load phases left)
	payload     int           // bytes of session values, over the cluster (each node holds all of it, or Copies/N of it partitioned)
	fill        time.Duration // until every node held every session
	join        time.Duration // a new node's New to WaitReady
}

// fillAndMeasure creates sessions of one size-byte key, spread over the
// nodes, waits until every node holds them (bounded), lets the cluster sit
// idle for idle (so that per-peer buffers may be returned), and reports the
// live heap per node (the process's after two GCs, divided by the nodes)
// against the payload, and the same read just before the sessions were
// created (after the same idle time), so that the sessions' own heap is
// the difference. Then it times a node joining the cluster that holds
// them (its state transfer), and closes that node.
func (c *cluster) fillAndMeasure(sessions, size int, idle, limit time.Duration) (memResult, error) {
	ctx := context.Background()
	n := len(c.nodes)
	base := c.nodes[0].Len()
	baseCopies := 0 // partitioned: the copies held before, over all nodes
	for _, st := range c.nodes {
		baseCopies += st.Len()
	}
	c.settle(limit)
	res := memResult{payload: sessions * size}
	res.baseHeap = heapPerNode(idle, n)
	start := time.Now()
	val := value(size)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, st := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := i; k < sessions; k += n {
				s := st.NewSession(ctx)
				_ = s.Set("v", val)
				if _, err := st.Save(ctx, s); err != nil {
					errs[i] = fmt.Errorf("memory phase: save on node %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return memResult{}, err
		}
	}
	want := base + sessions
	dl := time.Now().Add(limit)
	if c.copies > 0 {
		// Partitioned: each session on c.copies nodes.
		for total := 0; total < c.copies*sessions || !c.idle(); {
			if time.Now().After(dl) {
				return memResult{}, fmt.Errorf("memory phase: the nodes hold %d copies, want %d of the new sessions, after %v", total, c.copies*sessions, limit)
			}
			time.Sleep(20 * time.Millisecond)
			total = -baseCopies
			for _, st := range c.nodes {
				total += st.Len()
			}
		}
	}
	for _, st := range c.nodes {
		for c.copies == 0 && st.Len() < want {
			if time.Now().After(dl) {
				return memResult{}, fmt.Errorf("memory phase: a node holds %d of %d sessions after %v", st.Len(), want, limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.settle(limit)
	res.fill = time.Since(start)
	res.heapPerNode = heapPerNode(idle, n)
	if memProfile != "" {
		if err := writeHeapProfile(fmt.Sprintf("%s.%d", memProfile, n)); err != nil {
			return res, err
		}
	}

	jctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t0 := time.Now()
	st, err := c.startNode(jctx, fmt.Sprintf("n%02d", n), false)
	if err != nil {
		return res, fmt.Errorf("join: %w", err)
	}
	res.join = time.Since(t0)
	st.Close()
	return res, nil
}

// heapPerNode waits idle (what stays allocated when nothing happens),
// collects garbage and returns the live heap divided by n.
func heapPerNode(idle time.Duration, n int) float64 {
	time.Sleep(idle) // idle on purpose: per-peer buffers may be returned meanwhile
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / float64(n)
}

// memProfile, if set (-memprofile), is where the memory phase writes a
// heap profile, with ".N" appended.
var memProfile string

// writeHeapProfile writes the heap profile to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpuProfile, if set (-cpuprofile), is where each size's fixed-rate rounds
// write a CPU profile, with ".N" appended.
var cpuProfile string

// startCPUProfile starts a CPU profile into path and returns its stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
