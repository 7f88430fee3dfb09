package replicate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTicketWait(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]

	tk := a.publish(a.write("s1", "k", "v1"))
	require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), 1))
	require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), -1))
	// Acks come after apply: both peers hold it now, without waiting.
	require.Equal(t, "v1", b.value("s1", "k"))
	require.Equal(t, "v1", c.value("s1", "k"))

	require.NoError(t, tk.Wait(context.Background(), 0))
	require.ErrorIs(t, tk.Wait(context.Background(), 3), ErrNotEnoughPeers)
	require.NoError(t, a.e.Publish().Wait(context.Background(), 2))

	// Every peer frozen: Wait times out with the context's error.
	net.link("A", "B").set(func(l *memLink) { l.blocked = true })
	net.link("A", "C").set(func(l *memLink) { l.blocked = true })
	tk = a.publish(a.write("s2", "k", "v"))
	err := tk.Wait(ctxTimeout(t, 30*time.Millisecond), 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "acknowledgements")
}

func TestTicketWaitOneFrozenPeer(t *testing.T) {
	net, nodes := newCluster(t, 3, nil)
	a, b := nodes[0], nodes[1]
	net.link("A", "C").set(func(l *memLink) { l.blocked = true }) // C is frozen

	for i := range 20 {
		tk := a.publish(a.write(sessionID(i), "k", "v"))
		start := time.Now()
		require.NoError(t, tk.Wait(ctxTimeout(t, 5*time.Second), 1))
		require.Less(t, time.Since(start), 2*time.Second)
	}
	require.Equal(t, "v", b.value(sessionID(19), "k"))
	tk := a.publish(a.write("last", "k", "v"))
	require.ErrorIs(t, tk.Wait(ctxTimeout(t, 20*time.Millisecond), 2), context.DeadlineExceeded)
	require.ErrorIs(t, tk.Wait(ctxTimeout(t, 20*time.Millisecond), -1), context.DeadlineExceeded)
}

func TestTicketReleasedByPeerDown(t *testing.T) {
	net, nodes := newCluster(t, 2, nil)
	a := nodes[0]
	net.link("A", "B").set(func(l *memLink) { l.blocked = true })
	tk := a.publish(a.write("s", "k", "v"))
	errc := make(chan error, 2)
	go func() { errc <- tk.Wait(context.Background(), 1) }()
	go func() { errc <- tk.Wait(context.Background(), -1) }()
	a.e.PeerDown("B", false)
	errs := []error{<-errc, <-errc}
	require.Condition(t, func() bool {
		return (errors.Is(errs[0], ErrNotEnoughPeers) && errs[1] == nil) ||
			(errors.Is(errs[1], ErrNotEnoughPeers) && errs[0] == nil)
	}, "got %v", errs)
}
