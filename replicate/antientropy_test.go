package replicate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAntiEntropyRepairsAfterPartition(t *testing.T) {
	net, nodes := newCluster(t, 3, func(c *Config) { c.AntiEntropyInterval = 5 * time.Millisecond })
	a, b, c := nodes[0], nodes[1], nodes[2]
	for i := range 50 {
		a.publish(a.write(sessionID(i), "k", "v"))
	}
	waitFor(t, "initial replication", func() bool { return b.store.len() == 50 && c.store.len() == 50 })

	// Partition A from B and C; the membership layer reports it down.
	for _, other := range []*testNode{b, c} {
		net.both("A", other.name, func(l *memLink) { l.partitioned = true })
		a.e.PeerDown(other.name, false)
		other.e.PeerDown("A", false)
	}
	for i := range 20 {
		a.publish(a.write(sessionID(i), "k", "from A"))
		b.publish(b.write(sessionID(100+i), "k", "from B"))
	}
	c.publish(c.write(sessionID(30), "k", "from C"))
	// A write no queue ever carries: only anti-entropy can move it.
	b.store.Apply([]Record{b.write(sessionID(40), "k", "B only")})
	require.NotEqual(t, a.e.Digest(), b.e.Digest())

	for _, other := range []*testNode{b, c} {
		net.both("A", other.name, func(l *memLink) { l.partitioned = false })
	}
	connectAll(nodes)
	waitFor(t, "digests equal", func() bool {
		da := a.e.Digest()
		return equalDigest(da, b.e.Digest()) && equalDigest(da, c.e.Digest())
	})
	require.Equal(t, a.store.snapshot(), b.store.snapshot())
	require.Equal(t, a.store.snapshot(), c.store.snapshot())
	require.Equal(t, "from A", c.value(sessionID(5), "k"))
	require.Equal(t, "from B", a.value(sessionID(105), "k"))
	require.Equal(t, "B only", a.value(sessionID(40), "k"))
	require.Equal(t, "from C", a.value(sessionID(30), "k"))
	st := []Stats{a.e.Stats(), b.e.Stats(), c.e.Stats()}
	require.Positive(t, st[0].Repairs+st[1].Repairs+st[2].Repairs)
}

func equalDigest(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDigest(t *testing.T) {
	net := newMemNet(t)
	a := newNode(t, net, "A", 1, nil)
	b := newNode(t, net, "B", 2, nil)
	require.Len(t, a.e.Digest(), DigestBuckets)
	require.Equal(t, make([]uint64, DigestBuckets), a.e.Digest())

	r := a.write("s", "k1", "v1", "k2", "v2")
	a.store.Apply([]Record{r})
	b.store.Apply([]Record{r})
	require.Equal(t, a.e.Digest(), b.e.Digest())

	// Access is excluded.
	b.store.Apply([]Record{{ID: "s", Access: 12345}})
	require.Equal(t, a.e.Digest(), b.e.Digest())

	// A missing older key shows even though the newest version is equal.
	old := Record{ID: "t", Keys: map[string]Value{"old": {Data: []byte("x"), Ver: a.clock.Now()}}}
	newer := Record{ID: "t", Keys: map[string]Value{"new": {Data: []byte("y"), Ver: a.clock.Now()}}}
	a.store.Apply([]Record{old, newer})
	b.store.Apply([]Record{newer})
	require.NotEqual(t, a.e.Digest(), b.e.Digest())
	b.store.Apply([]Record{old})
	require.Equal(t, a.e.Digest(), b.e.Digest())

	// Tombstones count.
	a.store.Apply([]Record{{ID: "s", Dead: a.clock.Now()}})
	require.NotEqual(t, a.e.Digest(), b.e.Digest())

	// Fixed across processes: the hash of a known record never changes.
	known := Record{ID: "id", Keys: map[string]Value{"k": {Ver: Version{Wall: 1, Seq: 2, Node: 3}}}}
	require.Equal(t, uint64(0xe036b66f0f7b63e7), recordHash(&known), "%#x", recordHash(&known))
	require.Equal(t, 54, bucketOf("id"))
}
