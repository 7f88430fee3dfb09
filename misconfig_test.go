package peersession

// Misconfiguration is an error: a node its seeds refuse (keys, label,
// name) is told so by WaitReady, at once, in the words of ClusterConfig;
// so is a configuration New refuses. The cluster it tried to join goes on
// as before.

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/internal/testlog"
)

// refusalWithin is WaitReady's error for a node its seeds refuse, which
// must come at once: well before the seeds' retry interval.
func refusalWithin(t *testing.T, st *Store) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := st.WaitReady(ctx)
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "WaitReady did not return the refusal in time")
	return err
}

// startSpeaking starts node name, with copies, joined to tc's cluster
// and speaking only the wire formats formats (as another release would),
// and returns it with what its WaitReady returns within 30 s (a refusal
// of formats comes once the streams were refused both ways).
func (tc *testCluster) startSpeaking(name string, copies int, formats cluster.Formats) (*Store, error) {
	tc.t.Helper()
	cfg := ClusterConfig{Name: name, Join: []string{tc.seeds[0]}, Label: "test", Keys: [][]byte{testKey},
		Memberlist: fastTimers, Copies: copies}
	st, err := newStore(Config{Cluster: &cfg, Logger: slog.New(slog.DiscardHandler)},
		hooks{faults: func(cc *cluster.Config) { cc.Formats = formats }})
	require.NoError(tc.t, err)
	tc.t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithTimeout(tc.t.Context(), 30*time.Second)
	defer cancel()
	return st, st.WaitReady(ctx)
}

// assertServes checks that a and b still replicate to each other.
func assertServes(t *testing.T, a, b *Store) {
	t.Helper()
	tok := create(t, a, map[string]any{"still": "serving"})
	require.Eventually(t, func() bool { return value(b, tok, "still") == "serving" }, waitFor, tick,
		"the cluster stopped replicating")
}

func TestMisconfiguredNodeGetsAnErrorFromWaitReady(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	seed := tc.seeds[0]
	const auth = "peersession: seed %s answered but could not authenticate this node: "
	tests := []struct {
		name string
		mod  func(*ClusterConfig)
		is   error
		want string
	}{
		{"keys differ", func(c *ClusterConfig) { c.Keys = [][]byte{bytes.Repeat([]byte{9}, 32)} }, cluster.ErrKeysDiffer,
			auth + "the cluster keys differ (ClusterConfig.Keys): give every node the same key"},
		{"no key", func(c *ClusterConfig) { c.Keys = nil }, cluster.ErrKeysDiffer,
			auth + "the seed uses a cluster key and this node has none (ClusterConfig.Keys): give every node the same key"},
		{"labels differ", func(c *ClusterConfig) { c.Label = "other" }, cluster.ErrLabelsDiffer,
			`peersession: seed %s answered but closed the connection without a reply, as a node with another cluster label does: ` +
				`this node's ClusterConfig.Label is "other"; give every node the same label (or the seed is not a cluster node's gossip address)`},
		{"no label", func(c *ClusterConfig) { c.Label = "" }, cluster.ErrLabelsDiffer, `this node's ClusterConfig.Label is ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ClusterConfig{Name: "intruder", Join: []string{seed}, Label: "test", Keys: [][]byte{testKey}, Memberlist: fastTimers}
			tt.mod(&cfg)
			st, err := New(Config{Cluster: &cfg, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err, "New does not wait for the join's outcome to fail: WaitReady reports it")
			t.Cleanup(func() { _ = st.Close() })
			err = refusalWithin(t, st)
			assert.ErrorIs(t, err, tt.is)
			assert.Contains(t, err.Error(), strings.ReplaceAll(tt.want, "%s", seed))
			assert.NotRegexp(t, standalone, err.Error(), "a field named as cluster.Config names it")
			assert.Equal(t, 1, alive(st), "the node sees others")
			assert.Equal(t, 2, alive(nodes[0]), "the cluster took the node in")
		})
	}
	assertServes(t, nodes[0], nodes[1])
}

// A second live node with a member's Name is refused, whichever member it
// joins through; the members go on serving, without it.
func TestSecondLiveNodeWithTheSameNameIsRefused(t *testing.T) {
	for _, via := range []string{"the holder", "another member"} {
		t.Run("via "+via, func(t *testing.T) {
			var logs testlog.Buffer
			tc := newTestCluster(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
			nodes := tc.startAll("a", "c")
			seed := tc.seeds[0]
			if via == "another member" {
				seed = tc.seeds[1]
			}
			dup, err := New(Config{Logger: slog.New(slog.DiscardHandler), Cluster: &ClusterConfig{Name: "a", Join: []string{seed},
				Label: "test", Keys: [][]byte{testKey}, Memberlist: fastTimers}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = dup.Close() })

			err = refusalWithin(t, dup)
			require.ErrorIs(t, err, cluster.ErrNameTaken)
			holder := nodes[0].repl.node.Self()
			assert.Equal(t, fmt.Sprintf(`peersession: seed %s answered, but ClusterConfig.Name "a" is taken: node %s (%s) is alive with that name; give each node its own ClusterConfig.Name`,
				seed, holder.ID, tc.seeds[0]), err.Error())

			// The seed decided too (after it answered): once it logged
			// its refusal, no member has the newcomer, then or later.
			require.Eventually(t, func() bool { return strings.Contains(logs.String(), "refused a join") }, waitFor, tick)
			dupID := dup.repl.node.Self().ID
			for _, st := range nodes {
				assert.Equal(t, 2, alive(st))
				for _, m := range st.Members() {
					assert.NotEqual(t, dupID, m.ID, "a member took the second node in")
				}
			}
			assert.Equal(t, 1, alive(dup))
			assertServes(t, nodes[0], nodes[1])
			assertServes(t, nodes[1], nodes[0])
		})
	}
}

// A node that configured no Logger still says why it was refused: the
// default Logger passes warnings and errors to slog.Default.
func TestNilLoggerReportsARefusal(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	require.NoError(t, err)
	assert.True(t, cfg.Logger.Enabled(t.Context(), slog.LevelWarn), "warnings are dropped")
	assert.False(t, cfg.Logger.Enabled(t.Context(), slog.LevelInfo), "info is logged")

	tc := newTestCluster(t, nil)
	tc.startAll("a")
	var out testlog.Buffer
	log.SetOutput(&out) // slog.Default's handler writes to the log package's output
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	st, err := New(Config{Cluster: &ClusterConfig{Name: "b", Join: tc.seeds, Label: "test",
		Keys: [][]byte{bytes.Repeat([]byte{9}, 32)}, Memberlist: fastTimers}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	refusalWithin(t, st)
	assert.Contains(t, out.String(), "ERROR peersession: seed "+tc.seeds[0]+" answered but could not authenticate this node")
}

// New's errors about the cluster configuration name ClusterConfig's
// fields; binding every interface without a key asks for the key first.
func TestClusterConfigErrorsNameClusterConfigFields(t *testing.T) {
	const noKey = "peersession: ClusterConfig.Keys is empty and ClusterConfig.BindAddr 0.0.0.0 is not loopback: " +
		"anyone who can reach the ports could read and forge what the nodes exchange. " +
		"Give every node the same 32-byte key (make one with `openssl rand -base64 32`), " +
		"or set ClusterConfig.Insecure to run unencrypted; in Go, GenerateKey makes a key and ParseKey reads one from text"
	tests := []struct {
		name string
		mod  func(*ClusterConfig)
		want string
	}{
		{"all interfaces without a key", func(c *ClusterConfig) { c.BindAddr = "0.0.0.0" }, noKey},
		{"all interfaces with AdvertiseAddr, without a key", func(c *ClusterConfig) { c.BindAddr = "0.0.0.0"; c.AdvertiseAddr = "10.1.2.3" }, noKey},
		{"the key as text", func(c *ClusterConfig) { c.Keys = [][]byte{[]byte("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=")} },
			"peersession: ClusterConfig.Keys[0] is 44 bytes, want 32: a key is 32 random bytes, such as `openssl rand -base64 32` prints, decoded; " +
				"in Go, GenerateKey makes a key and ParseKey reads one from text"},
		{"all interfaces without AdvertiseAddr", func(c *ClusterConfig) { c.BindAddr = "0.0.0.0"; c.Keys = [][]byte{testKey} },
			"peersession: ClusterConfig.BindAddr 0.0.0.0 binds every interface; set ClusterConfig.AdvertiseAddr to the IP peers should use"},
		{"host name", func(c *ClusterConfig) { c.BindAddr = "localhost" }, `peersession: ClusterConfig.BindAddr "localhost" is not an IP address`},
		{"long name", func(c *ClusterConfig) { c.Name = strings.Repeat("n", 200) }, "peersession: ClusterConfig.Name is 200 bytes, at most 128 allowed"},
		{"long label", func(c *ClusterConfig) { c.Label = strings.Repeat("l", 300) }, "peersession: ClusterConfig.Label is 300 bytes"},
		{"port", func(c *ClusterConfig) { c.StreamPort = 70000 }, "peersession: ClusterConfig.StreamPort 70000 out of range"},
		{"negative", func(c *ClusterConfig) { c.RejoinInterval = -time.Second }, "peersession: ClusterConfig.RejoinInterval must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ClusterConfig{Name: "a"}
			tt.mod(&cfg)
			_, err := New(Config{Cluster: &cfg})
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), "got:  %s\nwant: %s", err, tt.want)
			assert.NotRegexp(t, standalone, err.Error())
			var ce *cluster.ConfigError
			assert.ErrorAs(t, err, &ce)
		})
	}
}

// A node whose peers run a release with no wire format in common with its
// own (here: one that speaks only a format 3) cannot get its state: its
// streams are refused both ways, WaitReady says why, naming both formats,
// and its readiness probe says it too. The cluster goes on as before.
func TestNodeWithNoCommonWireFormatGetsAnErrorFromWaitReady(t *testing.T) {
	tc := newTestCluster(t, nil)
	nodes := tc.startAll("a", "b")
	st, err := tc.startSpeaking("future", 0, cluster.Formats{Min: 3, Max: 3})
	require.ErrorIs(t, err, cluster.ErrFormatsDiffer)
	assert.Contains(t, err.Error(), "speaks wire format 1-2 and this node speaks 3")
	assert.Contains(t, err.Error(), "upgrade one release at a time")
	assert.Equal(t, err.Error(), st.notReady(), "the readiness probe's 503 says why")
	for _, n := range nodes {
		require.Eventually(t, func() bool { return n.repl.node.FormatConflict() != nil }, waitFor, tick,
			"a peer of the newer release dials every member: each refuses it")
	}
	assertServes(t, nodes[0], nodes[1])
}
