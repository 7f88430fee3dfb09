package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary doubles as the program run inside the namespaces:
// with NETNS_TEST_SERVE=ADDR it answers HTTP on ADDR with "hello from
// ADDR"; with NETNS_TEST_GET=URL it prints what URL answers.
func TestMain(m *testing.M) {
	if addr := os.Getenv("NETNS_TEST_SERVE"); addr != "" {
		err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s", addr)
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if u := os.Getenv("NETNS_TEST_GET"); u != "" {
		body, err := get(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Print(body)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// newNet is New for a test: skipped where namespaces cannot be made,
// closed when the test ends.
func newNet(t *testing.T, n int) *Net {
	t.Helper()
	nt, err := New("nstest", n)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, nt.Close()) })
	return nt
}

// serve runs the test binary's HTTP server in namespace i on addr, until
// the test ends, and waits until the host reaches it.
func serve(t *testing.T, nt *Net, i int, addr string) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := nt.Command(context.Background(), i, exe)
	cmd.Env = append(os.Environ(), "NETNS_TEST_SERVE="+addr)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := get("http://" + addr)
		if err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("the server in namespace %d exited: %s", i, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host never reached %s: %v", addr, err)
		}
	}
}

// getFrom GETs u from inside namespace i.
func getFrom(nt *Net, i int, u string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	cmd := nt.Command(context.Background(), i, exe)
	cmd.Env = append(os.Environ(), "NETNS_TEST_GET="+u)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", err
	}
	return string(out), nil
}

func get(u string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// Each namespace has its own address on the bridge: the host reaches
// each one, and they reach each other.
func TestNamespacesReachEachOtherAndTheHost(t *testing.T) {
	nt := newNet(t, 3)
	require.Equal(t, 3, nt.Len())
	seen := map[string]bool{nt.HostAddr(): true}
	for i := range nt.Len() {
		require.NotNil(t, net.ParseIP(nt.Addr(i)), nt.Addr(i))
		require.False(t, seen[nt.Addr(i)], "address %s given twice", nt.Addr(i))
		seen[nt.Addr(i)] = true
	}
	serve(t, nt, 0, nt.Addr(0)+":8080")
	body, err := getFrom(nt, 2, "http://"+nt.Addr(0)+":8080")
	require.NoError(t, err)
	require.Equal(t, "hello from "+nt.Addr(0)+":8080", body)

	// Each namespace has its own loopback, up, apart from the host's.
	serve(t, nt, 1, nt.Addr(1)+":8080")
	_, err = getFrom(nt, 2, "http://127.0.0.1:8080")
	require.Error(t, err, "namespace 2's loopback has no server")
}

// Renumber moves a namespace to an address no namespace has had; the
// old one answers no more.
func TestRenumberGivesANewAddress(t *testing.T) {
	nt := newNet(t, 2)
	old := nt.Addr(1)
	got, err := nt.Renumber(1)
	require.NoError(t, err)
	require.Equal(t, got, nt.Addr(1))
	require.NotEqual(t, old, got)
	require.NotEqual(t, nt.Addr(0), got)

	serve(t, nt, 1, got+":8080")
	body, err := getFrom(nt, 0, "http://"+got+":8080")
	require.NoError(t, err)
	require.Equal(t, "hello from "+got+":8080", body)
	out, err := ip("-n", nt.Name(1), "-4", "-o", "addr", "show", "dev", "eth0")
	require.NoError(t, err)
	require.NotContains(t, string(out), old+"/", "the old address is gone")
}

// A namespace's own /etc files replace the host's for the programs run
// in it, and no other's.
func TestWriteEtcIsSeenInThatNamespaceOnly(t *testing.T) {
	nt := newNet(t, 2)
	require.NoError(t, nt.SetNameserver(0, nt.HostAddr()))
	out, err := nt.Command(context.Background(), 0, "cat", "/etc/resolv.conf").Output()
	require.NoError(t, err)
	require.Equal(t, "nameserver "+nt.HostAddr()+"\n", string(out))

	host, err := os.ReadFile("/etc/resolv.conf")
	require.NoError(t, err)
	out, err = nt.Command(context.Background(), 1, "cat", "/etc/resolv.conf").Output()
	require.NoError(t, err)
	require.Equal(t, string(host), string(out), "namespace 1 has no resolv.conf of its own")

	require.Error(t, nt.WriteEtc(0, "../passwd", "x"))
	require.Error(t, nt.WriteEtc(0, "no-such-file-in-etc", "x"), "nothing in /etc to mount it over")
}

// Close removes every namespace, /etc directory and the bridge; twice is
// fine.
func TestCloseRemovesEverything(t *testing.T) {
	nt := newNet(t, 2)
	require.NoError(t, nt.SetNameserver(1, nt.HostAddr()))
	require.NoError(t, nt.Close())
	for i := range nt.Len() {
		require.NoFileExists(t, "/run/netns/"+nt.Name(i))
		require.NoDirExists(t, etcDir(nt.Name(i)))
	}
	require.False(t, exists("/sys/class/net/"+nt.bridge), "the bridge is gone")
	require.NoError(t, nt.Close())
}

// Sweep removes what a run whose process is gone left behind, and
// leaves a live run's alone.
func TestSweepRemovesOnlyDeadRuns(t *testing.T) {
	live := newNet(t, 1)

	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	id := fmt.Sprintf("nstest-%d-1", dead.Process.Pid)
	left := &Net{id: id, bridge: bridgeName(id), names: []string{nsName(id, 0)}, addrs: []int{1}, next: 2}
	t.Cleanup(func() { _ = left.Close() })
	require.NoError(t, left.build())
	require.NoError(t, left.SetNameserver(0, "10.0.0.1"))
	require.FileExists(t, "/run/netns/"+left.Name(0))
	orphan := left.Command(context.Background(), 0, "sleep", "600")
	require.NoError(t, orphan.Start())
	waited := make(chan error, 1)
	go func() { waited <- orphan.Wait() }()

	require.NoError(t, Sweep("nstest"))
	select {
	case err := <-waited:
		require.Error(t, err, "killed")
	case <-time.After(30 * time.Second):
		_ = orphan.Process.Kill()
		t.Fatal("Sweep left a process running in the namespace it removed")
	}
	require.NoFileExists(t, "/run/netns/"+left.Name(0))
	require.NoDirExists(t, etcDir(left.Name(0)))
	require.False(t, exists("/sys/class/net/"+left.bridge), "the dead run's bridge is gone")
	require.FileExists(t, "/run/netns/"+live.Name(0), "a live run's namespace stays")
	require.True(t, exists("/sys/class/net/"+live.bridge), "a live run's bridge stays")
}

func TestNewRefusesBadArguments(t *testing.T) {
	for _, prefix := range []string{"", "Upper", "has-dash", "9digit", "waytoolongprefix"} {
		_, err := New(prefix, 1)
		require.ErrorContains(t, err, "prefix", prefix)
	}
	for _, n := range []int{0, -1, 101} {
		_, err := New("nstest", n)
		require.ErrorContains(t, err, "namespaces", n)
	}
}

func TestOwnerParsesOnlyItsPrefix(t *testing.T) {
	for name, want := range map[string]int{
		"ps-123-4": 123, "ps-123-4-0": 123, "ps-0-1": 0, "ps-x-1": 0,
		"psx-123-4": 0, "ps-123": 0, "ps-1-2-3-4": 0, "other-123-4": 0,
	} {
		pid, ok := owner("ps", name)
		require.Equal(t, want, pid, name)
		require.Equal(t, want != 0, ok, name)
	}
}

// Runs made at the same time get subnets of their own.
func TestRunsAtOnceGetSubnetsOfTheirOwn(t *testing.T) {
	nets := make([]*Net, 4)
	errs := make([]error, len(nets))
	done := make(chan int)
	for i := range nets {
		go func() {
			nets[i], errs[i] = New("nstest", 1)
			done <- i
		}()
	}
	for range nets {
		i := <-done
		if errors.Is(errs[i], ErrUnavailable) {
			t.Skip(errs[i])
		}
		require.NoError(t, errs[i])
		t.Cleanup(func() { assert.NoError(t, nets[i].Close()) })
	}
	subnets := map[int]bool{}
	for _, nt := range nets {
		require.False(t, subnets[nt.octet], "subnet %s/24 given twice", addrOf(nt.octet, 0))
		subnets[nt.octet] = true
	}
}
