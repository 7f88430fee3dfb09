package peersession

// A read right after the client's own write, in partitioned mode, on the
// node that made the write and does not hold the session: the write's
// copy there (a stray) is on its way to the holders, and the node drops it
// once they have it. Whenever the fetch asks, and whenever the copy moves,
// the read finds the write, and is never told "no session" (the false
// "not found" of bench/cmd/kill at 16 nodes: a fetch that asked the
// holders before the creation reached them, and everyone else but the
// node itself, cached a miss that outlived the node's own copy).
//
// The copy is planted as the commit leaves it (stored on the writer, its
// change not yet on the holders), and its arrival and handover are played
// by the test at the moment it wants: the holders apply the change, then
// the writer drops its copy, as rebalance.go does once they acknowledge.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/peersession/peersession/internal/faultnet"
	"github.com/peersession/peersession/replicate/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// freshTokenHeldBy returns a new token whose session st's placement gives
// to the nodes named names (in either order).
func freshTokenHeldBy(t *testing.T, st *Store, names ...string) string {
	t.Helper()
	for range 100000 {
		tok := newToken()
		hs := st.Holders(tok)
		if len(hs) == len(names) && ((hs[0] == names[0] && hs[1] == names[1]) || (hs[0] == names[1] && hs[1] == names[0])) {
			return tok
		}
	}
	t.Fatal("no token landed on the wanted holders")
	return ""
}

// createdOn is the record of a new session holding n=val, created on st
// now, as commitNewLocked makes it.
func createdOn(t *testing.T, st *Store, id, val string) model.Record {
	t.Helper()
	now := st.cfg.Now()
	return model.Record{ID: id, Created: now.UnixNano(), Access: now.UnixNano(),
		Deadline: now.Add(st.cfg.Lifetime).UnixNano(), IdleTimeout: int64(st.cfg.IdleTimeout),
		Keys: []model.KeyValue{{Key: "n", Value: model.Value{Data: mustEncode(t, val), Ver: st.clock.Now()}}}}
}

// writtenOn is rec with n=val written on st now.
func writtenOn(t *testing.T, st *Store, rec model.Record, val string) model.Record {
	t.Helper()
	delta := model.Record{ID: rec.ID, Keys: []model.KeyValue{{Key: "n", Value: model.Value{Data: mustEncode(t, val), Ver: st.clock.Now()}}}}
	return model.Merge(rec, delta)
}

// strayOn stores rec on st as a commit on a node that does not hold the
// session leaves it, before the change reaches the holders and before the
// handover runs (it is not yet among st's strays, so the test decides when
// it goes), and returns the cookie value of the client that made it.
func strayOn(t *testing.T, st *Store, token string, rec model.Record) (cookie string, e *entry) {
	t.Helper()
	require.False(t, st.repl.part.holds(rec.ID), "the writer holds the session")
	_, e, err := st.mergeShard(rec, applyOpts{})
	require.NoError(t, err)
	return st.cookieValue(token, e.stamp), e
}

// arrive plays the write's change reaching the holders.
func arrive(t *testing.T, rec model.Record, holders ...*Store) {
	t.Helper()
	for _, h := range holders {
		require.Zero(t, replStore{h}.Apply([]model.Record{rec}), "a holder refused the write")
	}
}

// readDuringSecondRound starts a read of cookie on a, waits until the
// fetch has asked the holders and asked others (whose answers to a are
// delayed), runs during, then returns the read's value or error.
func readDuringSecondRound(t *testing.T, fn *faultnet.Net, a *Store, others []*Store, cookie string, during func()) (string, error) {
	t.Helper()
	served0 := make([]uint64, len(others))
	for i, o := range others {
		served0[i] = o.Stats().Replication.FetchesServed
		// Less than the half of FetchTimeout the other rounds get.
		fn.Delay(o.repl.cfg.Name, a.repl.cfg.Name, faultnet.Replication, slowFetchTimeout/4)
	}
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := a.Load(context.Background(), cookie)
		if err != nil {
			done <- result{err: err}
			return
		}
		var v string
		_, err = s.Get("n", &v)
		done <- result{v: v, err: err}
	}()
	require.Eventually(t, func() bool {
		for i, o := range others {
			if o.Stats().Replication.FetchesServed == served0[i] {
				return false
			}
		}
		return true
	}, waitFor, tick, "the fetch never asked beyond the holders")
	during()
	r := <-done
	for _, o := range others {
		fn.Delay(o.repl.cfg.Name, a.repl.cfg.Name, faultnet.Replication, 0)
	}
	return r.v, r.err
}

// A session created on a node that does not hold it, read there with the
// cookie it issued, while the creation is on its way to the holders: the
// holders answer first that they lack it, then, while the others are
// asked, the creation reaches them and the node drops its own copy. The
// read finds the session (asking the holders again), and the next read
// too. The same for a RenewID's new session (a new ID, made on the node
// with the old session's creation time and values).
func TestPartitionedReadRightAfterCreationOnANonHolderFindsIt(t *testing.T) {
	fn := faultnet.New(11)
	nodes := fiveNodes(t, fn, withCopies(2), slowFetch, noAntiEntropy)
	a, b, c, d, e := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
	for _, made := range []string{"creation", "RenewID"} {
		t.Run(made, func(t *testing.T) {
			token := freshTokenHeldBy(t, a, "c", "d")
			rec := createdOn(t, a, idOf(token), "new")
			if made == "RenewID" {
				rec.Created = a.cfg.Now().Add(-time.Minute).UnixNano()
			}
			cookie, copyOnA := strayOn(t, a, token, rec)

			v, err := readDuringSecondRound(t, fn, a, []*Store{b, e}, cookie, func() {
				arrive(t, rec, c, d)
				require.True(t, a.dropStray(rec.ID, copyOnA), "the handover's drop")
			})
			require.NoError(t, err, "a read of a session its node just made was told there is none")
			assert.Equal(t, "new", v)
			assert.Equal(t, "new", loadValue(t, a, cookie, "n"), "the read after it")
		})
	}
}

// The same creation, read before the holders have it: the node's own copy
// serves the read, and the fetch that found the session on no peer is not
// remembered as a miss, which would answer the next reads "no session"
// once the copy is handed over and dropped. With the client's stamp or
// without one (Load of the bare token, LoadOrCreate).
func TestPartitionedReadServedByItsOwnCopyCachesNoMiss(t *testing.T) {
	nodes := fiveNodes(t, nil, withCopies(2), slowFetch, noAntiEntropy)
	a, c, d := nodes[0], nodes[2], nodes[3]
	for _, stamped := range []bool{true, false} {
		t.Run(fmt.Sprintf("stamped=%v", stamped), func(t *testing.T) {
			token := freshTokenHeldBy(t, a, "c", "d")
			rec := createdOn(t, a, idOf(token), "new")
			cookie, copyOnA := strayOn(t, a, token, rec)
			if !stamped {
				cookie = token
			}

			assert.Equal(t, "new", loadValue(t, a, cookie, "n"), "its own copy did not serve the read")
			arrive(t, rec, c, d)
			require.True(t, a.dropStray(rec.ID, copyOnA))
			assert.Equal(t, "new", loadValue(t, a, cookie, "n"), "a miss cached while the node had the session")
		})
	}
}

// A read without a stamp asks the holders only, and the creation not on
// them yet, it finds nothing: that miss is cached, but a read with the
// client's authenticated stamp does not trust it, and asks on.
func TestPartitionedStampedReadDoesNotTrustAMissOfTheHoldersAlone(t *testing.T) {
	nodes := fiveNodes(t, nil, withCopies(2), slowFetch, noAntiEntropy)
	a, b := nodes[0], nodes[1]
	token := freshTokenHeldBy(t, a, "c", "d")
	rec := createdOn(t, a, idOf(token), "new")
	cookie, _ := strayOn(t, a, token, rec)

	_, err := b.Load(t.Context(), token) // no stamp: the holders only
	require.ErrorIs(t, err, ErrNotFound)
	assert.Equal(t, "new", loadValue(t, b, cookie, "n"), "the client's read was answered by the holders' miss")
}

// Read-your-writes on a node that does not hold the session: the client's
// write there, on its way to the holders, is handed over while the read's
// fetch asks the others. The holders answered the older version first;
// the read still sees the write (the holders, asked again, have it).
func TestPartitionedReadRightAfterAWriteOnANonHolderSeesIt(t *testing.T) {
	fn := faultnet.New(12)
	nodes := fiveNodes(t, fn, withCopies(2), slowFetch, noAntiEntropy)
	a, b, c, d, e := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4]
	tok, id := settledOn(t, c, nodes, c, d)
	token, _ := parseCookie(tok)
	rec := writtenOn(t, a, c.shards.get(id).rec, "new")
	cookie, copyOnA := strayOn(t, a, token, rec)

	v, err := readDuringSecondRound(t, fn, a, []*Store{b, e}, cookie, func() {
		arrive(t, rec, c, d)
		require.True(t, a.dropStray(id, copyOnA), "the handover's drop")
	})
	require.NoError(t, err)
	assert.Equal(t, "new", v, "the client did not see its own write")
}
