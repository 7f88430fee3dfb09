package replicate

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/peersession/peersession/replicate/internal/testrec"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"

	"github.com/stretchr/testify/require"
)

// A session may hold more keys (or bytes) than one Record on the wire may
// carry (Limits.MaxKeys, MaxRecordBytes): the store limits a session by
// its size only. Every path that sends whole records (a peer's queue,
// where changes coalesce; anti-entropy, which pushes whole records; the
// state transfer) sends such a session as several records, which merge
// back into it.

// bigSession returns session id with n keys k0..k<n-1>, written at tn's
// clock.
func bigSession(tn *testNode, id string, n int) model.Record {
	kv := make([]string, 0, 2*n)
	for i := range n {
		kv = append(kv, fmt.Sprintf("k%d", i), fmt.Sprint(i))
	}
	r := tn.write(id, kv...)
	r.Created = 1
	return r
}

// holdsAll reports whether tn holds every key of r at r's versions.
func holdsAll(tn *testNode, r model.Record) bool {
	got, ok := tn.store.Lookup(r.ID)
	if !ok || got.Created != r.Created || len(got.Keys) != len(r.Keys) {
		return false
	}
	for _, kv := range r.Keys {
		if v, ok := got.Get(kv.Key); !ok || v.Ver != kv.Value.Ver {
			return false
		}
	}
	return true
}

func TestCoalescedRecordOverMaxKeysReachesPeer(t *testing.T) {
	_, a, b, link := frozenPair(t, func(c *Config) { c.MaxInflight = 1 })
	a.publish(a.write("other", "k", "v"))
	waitFor(t, "the window is full", func() bool { return peerStats(a, "B").Batches == 1 })

	const n = 3 * 1024
	var last *Ticket
	var want model.Record
	for i := range n {
		w := a.write("big", fmt.Sprintf("k%d", i), fmt.Sprint(i))
		if i == 0 {
			w.Created = 1
		}
		want = model.Merge(want, w)
		last = a.publish(w)
	}
	require.Equal(t, 1, peerStats(a, "B").Queued, "the writes coalesced into one record")

	link.set(func(l *memLink) { l.blocked = false })
	require.NoError(t, last.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.True(t, holdsAll(b, want), "acknowledged, yet not on the peer")
	require.Zero(t, a.e.Stats().Dropped)
}

// Anti-entropy repairs a session of more than MaxKeys keys that no queue
// carried (the peer was frozen, then declared down).
func TestAntiEntropyRepairsSessionOverMaxKeys(t *testing.T) {
	_, nodes := newCluster(t, 2, func(c *Config) { c.AntiEntropyInterval = 5 * time.Millisecond })
	a, b := nodes[0], nodes[1]
	big := bigSession(a, "big", 3000)
	a.store.Apply([]model.Record{big})
	waitConverged(t, a, b)
	require.True(t, holdsAll(b, big))
	require.Zero(t, a.e.Stats().Dropped+b.e.Stats().Dropped)
}

// The state transfer carries a session of more than MaxKeys keys, and a
// joining node's Transfer completes.
func TestTransferTransfersSessionOverMaxKeys(t *testing.T) {
	net := newMemNet(t)
	a := newNode(t, net, "A", 1, nil)
	big := bigSession(a, "big", 5000)
	a.store.Apply([]model.Record{big, a.write("small", "k", "v")})
	b := newNode(t, net, "B", 2, nil)
	connectAll([]*testNode{a, b})
	err := b.e.Transfer(ctxTimeout(t, 5*time.Second))
	require.False(t, errors.Is(err, ErrNotEnoughPeers))
	require.NoError(t, err)
	require.True(t, holdsAll(b, big))
	require.Equal(t, "v", b.value("small", "k"))
}

// A Fetch of a session over one record's limits gets every part: the
// peer answers with one FetchReply per part, More set on all but the last,
// and the Fetch returns once the last has arrived.
func TestFetchGetsSessionOverMaxKeys(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	big := bigSession(b, "big", 2*wire.DefaultLimits.MaxKeys+500)
	b.store.Apply([]model.Record{big})
	before := net.link("B", "A").count(wire.MsgFetchReply)

	rec, found, err := a.e.Fetch(ctxTimeout(t, 5*time.Second), "big")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, testrec.Norm(big), testrec.Norm(rec), "every key, and the creation time from the last part")
	require.Equal(t, before+3, net.link("B", "A").count(wire.MsgFetchReply), "three parts, three replies")
}
