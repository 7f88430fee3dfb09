package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/peersession/peersession/bench/internal/proc"
	"github.com/peersession/peersession/replicate/placement"
)

// The sessions' copies are observed from outside: each client learns its
// session's ID and holders once from /where (Store.Holders), and each
// node lists the sessions it has a copy of on /held (Store.All). A session
// has its full copies when every one of its holders under the current
// membership lists it (a copy elsewhere, a stray waiting to be handed
// over, does not count).

// holdersOf returns, for every client's session, the indexes in procs of
// the nodes that hold it when the members are names[i] for i in members:
// Copies of them by the library's placement (replicate/placement, the
// rendezvous hashing Store.Holders answers with), or every member in full
// replication.
func holdersOf(copies int, names []string, members []int, ids []string) [][]int {
	out := make([][]int, len(ids))
	if copies == 0 {
		for i := range ids {
			out[i] = members
		}
		return out
	}
	var ms []string
	for _, m := range members {
		ms = append(ms, names[m])
	}
	v := placement.New(copies, ms)
	for i, id := range ids {
		for _, h := range v.Holders(id, nil) {
			out[i] = append(out[i], slices.Index(names, h))
		}
	}
	return out
}

// checkHolders compares, for every session, the holders a node answered
// (Store.Holders with every node a member) with holdersOf's, so that the
// copies are counted on the nodes the library picks.
func checkHolders(copies int, names []string, ids []string, told [][]string) error {
	if copies == 0 {
		return nil
	}
	all := make([]int, len(names))
	for i := range all {
		all[i] = i
	}
	want := holdersOf(copies, names, all, ids)
	for i := range ids {
		var w []string
		for _, h := range want[i] {
			w = append(w, names[h])
		}
		if !slices.Equal(w, told[i]) {
			return fmt.Errorf("session %s: the node says its holders are %v, the placement %v: the bench no longer computes them as the library does", ids[i], told[i], w)
		}
	}
	return nil
}

// copiesState is what the nodes' /held and /stats said at one moment.
type copiesState struct {
	missing int // (session, holder) pairs where the holder has no copy
	held    int // Store.Len summed over the nodes asked
	strays  int // Replication.Strays summed over the nodes asked
	err     error
}

// full reports whether every session had all its copies.
func (s copiesState) full() bool { return s.err == nil && s.missing == 0 }

func (s copiesState) String() string {
	if s.err != nil {
		return s.err.Error()
	}
	return fmt.Sprintf("%d copies missing; %d held in all, %d strays", s.missing, s.held, s.strays)
}

// copiesOn asks the nodes of members which sessions they have a copy of
// and counts the copies that holders (by session, as holdersOf) lack.
func copiesOn(procs []*proc.Proc, members []int, ids []string, holders [][]int) copiesState {
	var s copiesState
	has := make(map[int]map[string]bool, len(members))
	for _, m := range members {
		body, err := proc.GetBody(procs[m].URL+"/held", 10*time.Second, 0)
		if err != nil {
			s.err = fmt.Errorf("%s/held: %w", procs[m].Name, err)
			return s
		}
		var list []string
		if err := json.Unmarshal(body, &list); err != nil {
			s.err = fmt.Errorf("%s/held: %w", procs[m].Name, err)
			return s
		}
		has[m] = make(map[string]bool, len(list))
		for _, id := range list {
			has[m][id] = true
		}
		if st, err := procs[m].Stats(false); err == nil {
			s.held += int(num(st, "store", "Sessions"))
			s.strays += int(num(st, "store", "Replication", "Strays"))
		}
	}
	for i, id := range ids {
		for _, h := range holders[i] {
			if !has[h][id] {
				s.missing++
			}
		}
	}
	return s
}
