package replicate

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/internal/testrec"
	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

func TestFetch(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	b.store.Apply([]model.Record{b.write("s", "k1", "from B")})
	c.store.Apply([]model.Record{c.write("s", "k2", "from C")})

	rec, found, err := a.e.Fetch(ctxTimeout(t, 5*time.Second), "s")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from B", string(testrec.Key(rec, "k1").Data))
	require.Equal(t, "from C", string(testrec.Key(rec, "k2").Data))
	require.False(t, a.clock.Now().Less(rec.MaxVersion()))

	_, found, err = a.e.Fetch(ctxTimeout(t, 5*time.Second), "missing")
	require.NoError(t, err)
	require.False(t, found)

	// C frozen: the deadline ends the wait with B's answer, and C, silent
	// since, is not waited for again.
	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	start := time.Now()
	rec, found, err = a.e.Fetch(ctxTimeout(t, 50*time.Millisecond), "s")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from B", string(testrec.Key(rec, "k1").Data))
	require.Less(t, time.Since(start), 2*time.Second)
	require.EqualValues(t, 1, a.e.Stats().FetchTimeouts)
	require.True(t, a.e.Stats().Peers["C"].Unresponsive)
	rec, found, err = a.e.Fetch(context.Background(), "s") // no deadline: C would hold it for ever
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from B", string(testrec.Key(rec, "k1").Data))
	require.EqualValues(t, 1, a.e.Stats().FetchTimeouts)
	require.EqualValues(t, 1, a.e.Stats().FetchSkips)

	// Only frozen C: nobody who answers is an error, at once.
	a.e.PeerDown("B", false)
	_, _, err = a.e.Fetch(context.Background(), "s")
	require.ErrorIs(t, err, ErrNotEnoughPeers)

	// C thawed: the fetches it was sent reach it, it answers, and it is
	// waited for again.
	net.link("A", "C").set(func(l *memLink) { l.blocked = false })
	waitFor(t, "C heard again", func() bool { return !a.e.Stats().Peers["C"].Unresponsive })
	rec, found, err = a.e.Fetch(ctxTimeout(t, 5*time.Second), "s")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "from C", string(testrec.Key(rec, "k2").Data))

	// C going down releases the Fetch.
	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	errc := make(chan error, 1)
	before := net.link("A", "C").count(wire.MsgFetch)
	go func() {
		_, _, err := a.e.Fetch(context.Background(), "s")
		errc <- err
	}()
	waitFor(t, "fetch sent", func() bool { return net.link("A", "C").count(wire.MsgFetch) == before+1 })
	a.e.PeerDown("C", false)
	require.NoError(t, <-errc)

	_, found, err = a.e.Fetch(context.Background(), "s") // no peers
	require.NoError(t, err)
	require.False(t, found)
}
