package peersession

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// benchSessions fills a store with n sessions of a counter and a 1 KiB
// value, and returns their tokens.
func benchSessions(b *testing.B, st *Store, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	big := strings.Repeat("x", 1024)
	for i := range tokens {
		s := st.NewSession(b.Context())
		_ = s.Set("n", i)
		_ = s.Set("blob", big)
		t, err := st.Save(b.Context(), s)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = t
	}
	return tokens
}

// BenchmarkGet is a handler's read of one key from its loaded session: a
// map lookup in the snapshot plus the msgpack decode.
func BenchmarkGet(b *testing.B) {
	st := newTestStore(b, Config{})
	tokens := benchSessions(b, st, 1)
	s, err := st.Load(b.Context(), tokens[0])
	if err != nil {
		b.Fatal(err)
	}
	var n int // the destination lives outside the loop: what allocates is the store's
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := s.Get("n", &n); !ok || err != nil {
			b.Fatal("missing", err)
		}
	}
}

// BenchmarkLoadGet is a request's first read: find the session by its
// token's hash in the sharded map, then read one key.
func BenchmarkLoadGet(b *testing.B) {
	st := newTestStore(b, Config{})
	parallelOn(b, benchSessions(b, st, 1000), func(tok string, _ int) {
		s := st.newSession(parseCookie(tok))
		var n int
		if ok, err := s.Get("n", &n); !ok || err != nil {
			b.Fatal("missing", err)
		}
	})
}

// parallelOn runs op in b.RunParallel's goroutines until the benchmark
// ends, each goroutine's i-th op on tokens[i%len(tokens)].
func parallelOn(b *testing.B, tokens []string, op func(tok string, i int)) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			op(tokens[i%len(tokens)], i)
		}
	})
}

// BenchmarkSave is the commit of one changed key.
func BenchmarkSave(b *testing.B) {
	st := newTestStore(b, Config{})
	parallelOn(b, benchSessions(b, st, 1000), setN(b, st))
}

// setN is parallelOn's op of a commit of one changed key: Load tok, set
// key n to i, Save.
func setN(b *testing.B, st *Store) func(tok string, i int) {
	return func(tok string, i int) {
		s, err := st.Load(b.Context(), tok)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Set("n", i)
		if _, err := st.Save(b.Context(), s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadSetSave is the write path of a request that updates one
// key of an existing session, outside HTTP: Load by token, Set one int64
// key, Save. Single node, one goroutine.
func BenchmarkLoadSetSave(b *testing.B) {
	st := newTestStore(b, Config{})
	loadSetSave(b, st, benchSessions(b, st, 1000))
}

// BenchmarkLoadSetSaveMany is BenchmarkLoadSetSave on a store of 100,000
// sessions of 1 KiB visited in a shuffled order, as a busy node's are: the
// session map and the entries no longer fit the CPU caches, so it measures
// the cache misses of the lookups and copies too.
func BenchmarkLoadSetSaveMany(b *testing.B) {
	st := newTestStore(b, Config{})
	tokens := benchSessions(b, st, 100_000)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(tokens), func(i, j int) { tokens[i], tokens[j] = tokens[j], tokens[i] })
	loadSetSave(b, st, tokens)
}

// loadSetSave times Load, Set one key, Save, on each of tokens in turn.
func loadSetSave(b *testing.B, st *Store, tokens []string) {
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s, err := st.Load(ctx, tokens[i%len(tokens)])
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Set("t", int64(i)); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Save(ctx, s); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMiddleware is a full handler round trip through the middleware,
// without the network: read-only and read-write (read a counter and a
// 1 KiB value, increment, save). "baseline" runs the same request and
// recorder with no session at all, so the middleware's own cost is the
// difference.
func BenchmarkMiddleware(b *testing.B) {
	b.Run("baseline", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
		tok := newToken()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest("GET", "/", nil)
				req.AddCookie(&http.Cookie{Name: "session", Value: tok})
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	})
	for _, write := range []bool{false, true} {
		b.Run(fmt.Sprintf("write=%v", write), func(b *testing.B) {
			st := newTestStore(b, Config{})
			tokens := benchSessions(b, st, 1000)
			h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := FromContext(r.Context())
				var n int
				var blob string
				_, _ = s.Get("n", &n)
				_, _ = s.Get("blob", &blob)
				if write {
					_ = s.Set("n", n+1)
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			parallelOn(b, tokens, func(tok string, _ int) {
				req := httptest.NewRequest("GET", "/", nil)
				req.AddCookie(&http.Cookie{Name: "session", Value: tok})
				h.ServeHTTP(httptest.NewRecorder(), req)
			})
		})
	}
}

// BenchmarkReplication is the rate at which changes made on one node are
// applied on its peer: real memberlist nodes and Noise streams over
// loopback. Each op is one key update to one of 1,000 sessions, saved on
// A; the benchmark ends when B has applied the last one.
func BenchmarkReplication(b *testing.B) {
	a, err := New(Config{Cluster: &ClusterConfig{Name: "a", Label: "bench", Keys: [][]byte{testKey}, AntiEntropyInterval: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	nb, err := New(Config{Cluster: &ClusterConfig{Name: "b", Label: "bench", Keys: [][]byte{testKey}, AntiEntropyInterval: -1,
		Join: []string{a.repl.node.GossipAddr()}}})
	if err != nil {
		b.Fatal(err)
	}
	defer nb.Close()
	if err := nb.WaitReady(b.Context()); err != nil {
		b.Fatal(err)
	}
	tokens := benchSessions(b, a, 1000)
	for nb.Len() < len(tokens) {
		runtime.Gosched()
	}
	applied := func() uint64 { return nb.Stats().Replication.Applied }
	start := applied()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := a.Load(b.Context(), tokens[i%len(tokens)])
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Set("n", i)
		if _, err := a.Save(b.Context(), s); err != nil {
			b.Fatal(err)
		}
	}
	// Coalescing may merge several updates of one session into one record:
	// wait until B holds A's last value of every session.
	for _, tok := range tokens {
		t, _ := parseCookie(tok)
		id := idOf(t)
		for {
			if eb := nb.shards.get(id); eb != nil {
				va, _ := a.shards.get(id).rec.Get("n")
				vb, _ := eb.rec.Get("n")
				if va.Ver == vb.Ver {
					break
				}
			}
			runtime.Gosched()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(applied()-start)/float64(b.N), "records/op")
}
