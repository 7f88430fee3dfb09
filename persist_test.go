package peersession

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/testlog"
	"github.com/peersession/peersession/persist"
)

var dataKey = bytes.Repeat([]byte{9}, KeySize)

// newDiskStore returns a single-node store on dir, closed at the end of
// the test (closing it again is harmless).
func newDiskStore(t testing.TB, dir string, opts func(*Config)) *Store {
	t.Helper()
	cfg := Config{DataDir: dir, DataKey: dataKey, FlushInterval: 10 * time.Millisecond, Logger: quietLogger()}
	if opts != nil {
		opts(&cfg)
	}
	return newTestStore(t, cfg)
}

// userSession creates a session holding a user, a cart and a principal.
func userSession(t testing.TB, st *Store, i int) string {
	t.Helper()
	s := st.NewSession(t.Context())
	require.NoError(t, s.Set("user", fmt.Sprintf("user-%d", i)))
	require.NoError(t, s.Set("cart", []string{"apple", fmt.Sprint(i)}))
	require.NoError(t, s.SetPrincipal(fmt.Sprintf("p%d", i)))
	tok, err := st.Save(t.Context(), s)
	require.NoError(t, err)
	return tok
}

// requireUser checks that tok's session on st is userSession's i.
func requireUser(t testing.TB, st *Store, tok string, i int) {
	t.Helper()
	s, err := st.Load(t.Context(), tok)
	require.NoError(t, err, "session %d lost", i)
	var user string
	var cart []string
	_, err = s.Get("user", &user)
	require.NoError(t, err)
	_, err = s.Get("cart", &cart)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("user-%d", i), user)
	require.Equal(t, []string{"apple", fmt.Sprint(i)}, cart)
	require.Equal(t, fmt.Sprintf("p%d", i), s.Principal())
}

func TestPersistRestartKeepsEverySession(t *testing.T) {
	dir := t.TempDir()
	st := newDiskStore(t, dir, nil)
	var tokens []string
	for i := range 200 {
		tokens = append(tokens, userSession(t, st, i))
	}
	// Destroyed, and destroyed by principal: they stay destroyed.
	s, err := st.Load(t.Context(), tokens[0])
	require.NoError(t, err)
	require.NoError(t, s.Destroy())
	_, err = st.Save(t.Context(), s)
	require.NoError(t, err)
	n, err := st.DestroyPrincipal(t.Context(), "p1")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, st.Close())

	st2 := newDiskStore(t, dir, nil)
	require.Equal(t, 198, st2.Len())
	for i, tok := range tokens[2:] {
		requireUser(t, st2, tok, i+2)
	}
	for _, tok := range tokens[:2] {
		_, err := st2.Load(t.Context(), tok)
		require.ErrorIs(t, err, ErrNotFound)
		tk, _ := parseCookie(tok)
		e := st2.shards.get(idOf(tk))
		require.True(t, e != nil && e.rec.IsDead(), "the tombstone is kept, so no peer brings the session back")
	}
	// A change after the restart survives the next one.
	update(t, st2, tokens[5], map[string]any{"user": "renamed"})
	require.NoError(t, st2.Close())
	st3 := newDiskStore(t, dir, nil)
	require.Equal(t, "renamed", value(st3, tokens[5], "user"))
}

func TestPersistRestartDropsExpired(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	opts := func(c *Config) { c.Now = clock.Now; c.IdleTimeout = time.Hour }
	st := newDiskStore(t, dir, opts)
	old := userSession(t, st, 1)
	clock.Advance(40 * time.Minute)
	fresh := userSession(t, st, 2)
	require.NoError(t, st.Close())

	clock.Advance(30 * time.Minute) // old idle 70m, fresh 30m
	st2 := newDiskStore(t, dir, opts)
	require.Equal(t, 1, st2.Len())
	_, err := st2.Load(t.Context(), old)
	require.ErrorIs(t, err, ErrNotFound)
	requireUser(t, st2, fresh, 2)
}

func TestPersistDataDirConfigErrors(t *testing.T) {
	_, err := New(Config{DataDir: t.TempDir()})
	require.ErrorContains(t, err, "Config.DataKey")
	_, err = New(Config{DataDir: t.TempDir(), DataKey: []byte("short")})
	require.ErrorContains(t, err, "Config.DataKey has 5 bytes")
	_, err = New(Config{DataDir: t.TempDir(), DataKey: dataKey, FlushInterval: -time.Second})
	require.ErrorContains(t, err, "Config.FlushInterval")
}

func TestPersistDataDirDamaged(t *testing.T) {
	dir := t.TempDir()
	st := newDiskStore(t, dir, nil)
	userSession(t, st, 1)
	require.NoError(t, st.Close())

	// Another key: refused, naming the cause.
	_, err := New(Config{DataDir: dir, DataKey: bytes.Repeat([]byte{1}, KeySize), Logger: quietLogger()})
	require.ErrorIs(t, err, persist.ErrWrongKey)
	require.ErrorContains(t, err, "Config.DataDir")

	// A foreign file, and hostile bytes under the snapshot's name.
	for name, b := range map[string][]byte{
		"foreign": []byte("PK\x03\x04 this is a zip file, not sessions......................................."),
		"hostile": append([]byte("peersess\x01S"), bytes.Repeat([]byte{0xff}, 200)...),
	} {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(d, "snapshot"), b, 0o600))
			_, err := New(Config{DataDir: d, DataKey: dataKey, Logger: quietLogger()})
			require.Error(t, err)
			require.ErrorContains(t, err, filepath.Join(d, "snapshot"))
		})
	}

	// A log torn by a crash: loaded up to the tear, with a warning.
	logs, err := filepath.Glob(filepath.Join(dir, "log-*"))
	require.NoError(t, err)
	var torn bool
	for _, l := range logs {
		b, err := os.ReadFile(l)
		require.NoError(t, err)
		if len(b) > 100 {
			require.NoError(t, os.WriteFile(l, append(b, 0, 0, 1, 0, 'R', 1, 2, 3), 0o600))
			torn = true
		}
	}
	require.True(t, torn)
	var logBuf testlog.Buffer
	st2 := newDiskStore(t, dir, func(c *Config) { c.Logger = bufLogger(&logBuf) })
	require.Equal(t, 1, st2.Len())
	require.NoError(t, st2.Close())
	require.Contains(t, logBuf.String(), "torn write")
}

// The crash test runs the test binary again as a child that saves sessions
// on a data directory, waits for its periodic flush (not Close) and says
// so; the parent kills it with SIGKILL at once and reopens the directory.
const crashDirEnv = "PEERSESSION_CRASH_DIR"

func TestPersistCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child of TestPersistCrashLosesNoFlushedWrite")
	}
	st, err := New(Config{DataDir: dir, DataKey: dataKey, FlushInterval: 200 * time.Millisecond, Logger: quietLogger()})
	require.NoError(t, err)
	for i := range 500 {
		fmt.Printf("token %d %s\n", i, userSession(t, st, i))
	}
	require.NoError(t, st.disk.WaitFlushed(t.Context())) // the timer's flush, not a forced one
	fmt.Println("flushed")
	<-context.Background().Done() // killed here
}

func TestPersistCrashLosesNoFlushedWrite(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPersistCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	tokens := map[int]string{}
	sc := bufio.NewScanner(out)
	flushed := false
	for sc.Scan() {
		var i int
		var tok string
		if _, err := fmt.Sscanf(sc.Text(), "token %d %s", &i, &tok); err == nil {
			tokens[i] = tok
		}
		if sc.Text() == "flushed" {
			flushed = true
			break
		}
	}
	require.True(t, flushed, "the child ended before its flush")
	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no Close, no deferred code
	err = cmd.Wait()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee) && !ee.Exited(), "the child was killed: %v", err)

	st := newDiskStore(t, dir, nil)
	require.Len(t, tokens, 500)
	require.Equal(t, 500, st.Len())
	for i, tok := range tokens {
		requireUser(t, st, tok, i)
	}
}

// A node restarted from its DataDir merges what it kept with what its peer
// did meanwhile: destroyed, changed and created sessions. In partitioned
// mode two copies of two nodes put every session on both, through the
// partitioned mode's paths (placement, rebalance, fetch).
func TestRestartClusterNodeMergesWithPeer(t *testing.T) {
	eachMode(t, testRestartClusterNodeMergesWithPeer)
}

func testRestartClusterNodeMergesWithPeer(t *testing.T, opts func(*Config)) {
	dirs := map[string]string{"a": t.TempDir()}
	tc := newTestCluster(t, func(c *Config) {
		opts(c)
		c.DataDir = dirs[c.Cluster.Name] // a only
		c.FlushInterval = 10 * time.Millisecond
	})
	nodes := tc.startAll("a", "b")
	a, b := nodes[0], nodes[1]
	gone := create(t, a, map[string]any{"user": "destroyed while a was down"})
	kept := create(t, a, map[string]any{"user": "kept"})
	onA := create(t, a, map[string]any{"user": "only a's disk and b"})
	eventuallyEverywhere(t, func(st *Store) bool { return st.Len() == 3 }, "not replicated", b)
	require.NoError(t, a.Close())
	tc.waitMembers(1, b)

	// While a is down, b destroys one session, changes one, creates one.
	s, err := b.Load(t.Context(), gone)
	require.NoError(t, err)
	require.NoError(t, s.Destroy())
	_, err = b.Save(t.Context(), s)
	require.NoError(t, err)
	update(t, b, kept, map[string]any{"user": "changed on b"})
	fresh := create(t, b, map[string]any{"user": "created on b"})

	// a's disk alone: what it held when it stopped, served at once. (Full
	// replication only: in partitioned mode a graceful Close hands the
	// node's sessions over, and its disk keeps only what it could not:
	// docs/design.md, "Partitioned mode".)
	full := a.part.Load() == nil
	if full {
		single, err := New(Config{DataDir: dirs["a"], DataKey: testKey, Logger: quietLogger()})
		require.NoError(t, err)
		require.Equal(t, "destroyed while a was down", value(single, gone, "user"))
		require.NoError(t, single.Close())
	}

	a2 := tc.start("a")
	tc.waitMembers(2, a2, b)
	eventuallyEverywhere(t, func(st *Store) bool {
		return !has(st, gone) && value(st, kept, "user") == "changed on b" &&
			value(st, fresh, "user") == "created on b" && value(st, onA, "user") == "only a's disk and b"
	}, "the restarted node did not merge with its peer", a2, b)

	// The merge is saved too: a alone again still has the tombstone.
	require.NoError(t, a2.Close())
	if !full {
		return
	}
	single, err := New(Config{DataDir: dirs["a"], DataKey: testKey, Logger: quietLogger()})
	require.NoError(t, err)
	defer single.Close()
	require.False(t, has(single, gone))
	require.Equal(t, "changed on b", value(single, kept, "user"))
}

// quietLogger discards logs.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// bufLogger writes warnings and up to b.
func bufLogger(b *testlog.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
