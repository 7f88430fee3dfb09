package replicate

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// formatNet is a Network that tells each peer's wire format, as
// cluster.Node does once a stream's handshake has told it.
type formatNet struct {
	Network
	mu      sync.Mutex // guards formats
	formats map[string]int
}

func (f *formatNet) PeerFormat(peer string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.formats[peer]
	return v, ok
}

func (f *formatNet) set(peer string, v int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.formats[peer] = v
}

var _ FormatNetwork = (*formatNet)(nil)

// The engine knows each peer's wire format from the Network, once the
// handshake of a stream with it has told: 0 until then, and with a
// Network that does not tell.
func TestPeerStatsGiveEachPeersFormat(t *testing.T) {
	net := newMemNet(t)
	fn := &formatNet{Network: net.endpoint("A"), formats: map[string]int{}}
	e, err := New(Config{Self: "A", Network: fn, Store: newMemStore(), Clock: model.NewClock(1, nil), AntiEntropyInterval: -1})
	require.NoError(t, err)
	t.Cleanup(e.Close)
	e.PeerUp("B")
	e.PeerUp("C")
	require.Zero(t, e.Stats().Peers["B"].Format, "no stream yet")

	fn.set("B", wire.FormatNewest)
	fn.set("C", wire.FormatOldest)
	require.Equal(t, wire.FormatNewest, e.Stats().Peers["B"].Format)
	require.Equal(t, wire.FormatOldest, e.Stats().Peers["C"].Format)

	plain, err := New(Config{Self: "D", Network: net.endpoint("D"), Store: newMemStore(), Clock: model.NewClock(1, nil), AntiEntropyInterval: -1})
	require.NoError(t, err)
	t.Cleanup(plain.Close)
	plain.PeerUp("B")
	require.Zero(t, plain.Stats().Peers["B"].Format, "a Network that does not tell")
}
