package peersession

// Switching a cluster between full replication and partitioned mode
// (ClusterConfig.Copies) is a full restart, not a rolling one: nodes in
// the two modes refuse each other (TestCopiesThatDifferAreRefused). With
// DataDir every session survives it: each node reloads what it saved,
// and the new mode puts the sessions where they belong. Real memberlist
// nodes over loopback.

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSwitchingModesWithAFullRestartKeepsEverySession(t *testing.T) {
	for _, tt := range []struct {
		name     string
		from, to int
	}{
		{"full to copies=2", 0, 2},
		{"copies=2 to full", 2, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			names := []string{"a", "b", "c", "d"}
			dirs := map[string]string{}
			for _, n := range names {
				dirs[n] = t.TempDir()
			}
			inMode := func(copies int) func(*Config) {
				return func(c *Config) {
					withCopies(copies)(c)
					c.DataDir = dirs[c.Cluster.Name]
				}
			}
			before := newTestCluster(t, inMode(tt.from)).startAll(names...)
			tokens := make([]string, 60)
			for i := range tokens {
				tokens[i] = create(t, before[i%len(before)], map[string]any{"n": fmt.Sprint(i)})
			}
			for i, tok := range tokens {
				eventuallyEverywhere(t, func(st *Store) bool { return value(st, tok, "n") == fmt.Sprint(i) },
					"the session was never readable everywhere", before...)
			}
			for _, st := range before {
				require.NoError(t, st.Close())
			}

			after := newTestCluster(t, inMode(tt.to)).startAll(names...)
			if tt.to > 0 {
				waitSettled(t, tokens, after...)
			} else {
				eventuallyEverywhere(t, func(st *Store) bool {
					for _, tok := range tokens {
						if !holdsCopy(st, tok) {
							return false
						}
					}
					return true
				}, "full replication never gave every node every session", after...)
			}
			for i, tok := range tokens {
				for _, st := range after {
					require.Equal(t, fmt.Sprint(i), value(st, tok, "n"), "session %d on %s", i, st.repl.cfg.Name)
				}
			}
		})
	}
}
