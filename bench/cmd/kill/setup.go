package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"sync"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
)

// nodeNames names n nodes a, b, c, ...
func nodeNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = string(rune('a' + i))
	}
	return names
}

// startNodes starts o.nodes server processes clustered on 127.0.0.1 and
// waits until each sees the others; the caller stops them.
func startNodes(ctx context.Context, o *options, names []string) ([]*proc.Proc, error) {
	var procs []*proc.Proc
	port, err := proc.FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	for i, name := range names {
		args := []string{"-variant", "peer", "-consistency", "async", "-node", name, "-copies", strconv.Itoa(o.copies)}
		if o.verbose {
			args = append(args, "-v")
		}
		if i == 0 {
			args = append(args, "-gossip-port", strconv.Itoa(port))
		} else {
			args = append(args, "-join", fmt.Sprintf("127.0.0.1:%d", port))
		}
		p, err := proc.Start(name, 2*time.Minute, nil, o.server, args...)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, p := range procs {
		if err := p.WaitPeers(wctx, len(names)-1); err != nil {
			return procs, err
		}
	}
	return procs, nil
}

// setupMisses are the clients whose first read, on the node that had just
// created their session (before the load), answered "not found", and the
// longest such a client waited until it was found.
type setupMisses struct {
	clients int
	longest time.Duration
}

// makeClients creates o.sessions clients (at least one per worker), each
// with its own cookie jar and a session created on node (i mod N), learns
// each session's ID and holders, and waits (at most a minute) until the
// holders have every session. clients[w] are worker w's; ids are the
// sessions' IDs, worker by worker.
func makeClients(ctx context.Context, o *options, tr *http.Transport, procs []*proc.Proc, names []string) (clients [][]*client, ids []string, setup setupMisses, err error) {
	total := max(o.sessions, o.workers)
	clients = make([][]*client, o.workers)
	told := make([][][]string, o.workers)
	errs := make([]error, o.workers)
	missing := make([]int, o.workers)              // clients whose first read said "not found"
	missingFor := make([]time.Duration, o.workers) // the longest until found
	var wg sync.WaitGroup
	for w := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total && ctx.Err() == nil; i += o.workers {
				jar, _ := cookiejar.New(nil)
				cl := &client{c: &http.Client{Transport: tr, Jar: jar, Timeout: o.timeout}}
				if err := cl.init(procs[i%len(procs)].URL); err != nil {
					errs[w] = fmt.Errorf("client %d: /init: %w", i, err)
					return
				}
				// Asked of the node that created it, at once: a "not
				// found" here is a false one (counted, and asked again
				// for up to 10 s); other errors end the round.
				var hs []string
				var err error
				t0 := time.Now()
				for try := 0; ; try++ {
					hs, err = cl.where(procs[i%len(procs)].URL)
					if !errors.Is(err, errMissing) || time.Since(t0) > 10*time.Second {
						break
					}
					if try == 0 {
						missing[w]++
					}
					time.Sleep(100 * time.Millisecond)
				}
				if try := time.Since(t0); missing[w] > 0 && err == nil {
					missingFor[w] = max(missingFor[w], try)
				}
				if err != nil {
					errs[w] = fmt.Errorf("client %d: %w", i, err)
					return
				}
				clients[w] = append(clients[w], cl)
				told[w] = append(told[w], hs)
			}
		}()
	}
	wg.Wait()
	for w, err := range errs {
		setup.clients += missing[w]
		setup.longest = max(setup.longest, missingFor[w])
		if err != nil {
			return nil, nil, setup, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, setup, err
	}
	var all [][]string
	for w, cs := range clients {
		for i, cl := range cs {
			ids = append(ids, cl.id)
			all = append(all, told[w][i])
		}
	}
	if err := checkHolders(o.copies, names, ids, all); err != nil {
		return nil, nil, setup, err
	}
	members := make([]int, len(procs))
	for i := range members {
		members[i] = i
	}
	holders := holdersOf(o.copies, names, members, ids)
	var last copiesState
	for dl := time.Now().Add(time.Minute); time.Now().Before(dl); time.Sleep(100 * time.Millisecond) {
		if last = copiesOn(procs, members, ids, holders); last.full() {
			return clients, ids, setup, nil
		}
	}
	return nil, nil, setup, fmt.Errorf("the %d sessions did not reach their holders within a minute: %s", total, last)
}
