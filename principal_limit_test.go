package peersession

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// login saves a new session on st tagged with principal p and returns its
// cookie value, or the commit's error.
func login(st *Store, p string) (string, error) {
	ctx := context.Background()
	s := st.NewSession(ctx)
	if err := s.SetPrincipal(p); err != nil {
		return "", err
	}
	if err := s.Set("user", p); err != nil {
		return "", err
	}
	return st.Save(ctx, s)
}

func TestMaxSessionsPerPrincipalEndsTheOldest(t *testing.T) {
	st := newTestStore(t, Config{MaxSessionsPerPrincipal: 2})
	var toks []string
	for range 4 {
		tok, err := login(st, "alice")
		require.NoError(t, err)
		toks = append(toks, tok)
	}
	_, err := login(st, "bob")
	require.NoError(t, err)
	assert.Len(t, st.PrincipalSessions("alice"), 2)
	for i, tok := range toks {
		_, err := st.Load(context.Background(), tok)
		if i < 2 {
			assert.ErrorIs(t, err, ErrNotFound, "login %d, among the oldest, ended", i)
		} else {
			assert.NoError(t, err, "login %d, among the newest, lives", i)
		}
	}
	assert.Len(t, st.PrincipalSessions("bob"), 1, "another user is not affected")
}

func TestMaxSessionsPerPrincipalRefusesTheNewLogin(t *testing.T) {
	st := newTestStore(t, Config{MaxSessionsPerPrincipal: 2, LoginPolicy: RefuseNew})
	first, err := login(st, "alice")
	require.NoError(t, err)
	_, err = login(st, "alice")
	require.NoError(t, err)
	_, err = login(st, "alice")
	require.ErrorIs(t, err, ErrTooManyLogins)
	assert.Equal(t, 403, StatusCode(err))
	assert.Len(t, st.PrincipalSessions("alice"), 2)
	_, err = st.Load(context.Background(), first)
	assert.NoError(t, err, "the existing sessions are kept")

	// A session already tagged stays usable: renewing it is no new login.
	s, err := st.Load(context.Background(), first)
	require.NoError(t, err)
	require.NoError(t, s.RenewID())
	require.NoError(t, s.SetPrincipal("alice"))
	_, err = st.Save(context.Background(), s)
	assert.NoError(t, err)
}

// Simultaneous logins of one user spread over every node end, once
// replication settles, with at most the limit on every node and the same
// survivors everywhere, under either policy.
func TestSimultaneousLoginsOnEveryNodeSettleOnTheSameSurvivors(t *testing.T) {
	for _, policy := range []LoginPolicy{EndOldest, RefuseNew} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			tc := newTestCluster(t, func(c *Config) {
				c.MaxSessionsPerPrincipal = 2
				c.LoginPolicy = policy
			})
			nodes := tc.startAll("a", "b", "c")
			var wg sync.WaitGroup
			for i := range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := login(nodes[i%3], "alice")
					if err != nil {
						assert.ErrorIs(t, err, ErrTooManyLogins)
					}
				}()
			}
			wg.Wait()
			require.Eventually(t, func() bool {
				want := nodes[0].PrincipalSessions("alice")
				if len(want) == 0 || len(want) > 2 {
					return false
				}
				for _, st := range nodes[1:] {
					if !slices.Equal(st.PrincipalSessions("alice"), want) {
						return false
					}
				}
				return true
			}, waitFor, tick, "the nodes never agreed on at most two survivors")
		})
	}
}
