package netns

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A cut drops what one namespace sends another, and only that: the host
// and the other namespaces still reach both; Heal restores the link.
func TestCutDropsOneLinkUntilHeal(t *testing.T) {
	nt := newNet(t, 3)
	serve(t, nt, 0, nt.Addr(0)+":8080")
	u := "http://" + nt.Addr(0) + ":8080"

	require.NoError(t, nt.Cut(2, 0))
	_, err := getFrom(nt, 2, u)
	require.Error(t, err, "namespace 2's packets to 0 are dropped")
	body, err := getFrom(nt, 1, u)
	require.NoError(t, err, "namespace 1 is not cut")
	assert.Equal(t, "hello from "+nt.Addr(0)+":8080", body)
	_, err = get(u)
	require.NoError(t, err, "the host is never cut")

	require.NoError(t, nt.Heal())
	_, err = getFrom(nt, 2, u)
	require.NoError(t, err, "healed")
	require.NoError(t, nt.Heal(), "healing a healed network is fine")
	require.Error(t, nt.Cut(1, 1))
}

// Netem sets a netem qdisc (the link still carries packets without
// loss), and Heal removes it.
func TestNetemUntilHeal(t *testing.T) {
	nt := newNet(t, 2)
	serve(t, nt, 0, nt.Addr(0)+":8080")
	err := nt.Netem(1, 30*time.Millisecond, 0)
	if errors.Is(err, ErrNoNetem) {
		t.Skip(err)
	}
	require.NoError(t, err)
	on, err := nt.netemOn(1)
	require.NoError(t, err)
	require.True(t, on)
	_, err = getFrom(nt, 1, "http://"+nt.Addr(0)+":8080")
	require.NoError(t, err, "delayed, not dropped")

	require.NoError(t, nt.Netem(1, 50*time.Millisecond, 10), "a second Netem replaces the first")
	require.NoError(t, nt.Heal())
	on, err = nt.netemOn(1)
	require.NoError(t, err)
	require.False(t, on)
	require.Error(t, nt.Netem(0, time.Millisecond, 101))
}
