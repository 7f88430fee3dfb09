package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/internal/netns"
	"github.com/peersession/peersession/internal/testlog"
)

// peersName is the one DNS name every node joins by, as a Kubernetes
// headless Service names every pod.
const peersName = "peers.peersession.test"

// Issue 20's "done when": three demo nodes joined by one DNS name form
// one cluster, and again after all three restart on new addresses.
//
// Each node runs in a network namespace of its own with
// `-join peers.peersession.test:7946` and a resolv.conf that points at a
// dnsmasq (in a namespace of its own) holding an A record for every node.
// Then every node stops, each namespace gets a new address, dnsmasq's
// records are changed to the new ones, and every node starts again:
// none of the addresses any node knew is in use, so they meet again only
// by resolving the name again.
//
// Last, the islands that a node which stops resolving too early leaves
// behind (the bug issue 20 reports). After another full restart on new
// addresses, four nodes start while the name's answer differs between
// clients, as while DNS propagates: n1 and n2 ask one dnsmasq, which
// lists only them; n3 and n4 another, which lists only them. That makes
// two clusters of two, each node with a peer. Once both list all four,
// the islands merge by resolving the name again (every RejoinInterval,
// 10 s, for a node that has peers).
//
// It needs root, iproute2 and dnsmasq (test.sh installs them); it skips
// without them, except in CI (CI set), where it fails.
func TestThreeNodesJoinedByOneDNSNameFormOneCluster(t *testing.T) {
	c := newDNSCluster(t)

	c.setRecords(c.addrs(0, 1, 2))
	c.start(0, 1, 2)
	c.requireOneCluster(0, 1, 2)

	c.stopAll()
	old := c.renumberAll()
	c.setRecords(c.addrs(0, 1, 2))
	restarted := time.Now()
	c.start(0, 1, 2)
	c.requireOneCluster(0, 1, 2)
	t.Logf("restarted on new addresses, one cluster %v after the start", time.Since(restarted).Round(time.Millisecond))
	for _, a := range c.addrs(0, 1, 2) {
		require.NotContains(t, old, a, "every node restarted on a new address")
	}

	c.stopAll()
	c.renumberAll()
	c.dns[0].setRecords(t, c.addrs(0, 1))
	c.dns[1].setRecords(t, c.addrs(2, 3))
	c.start(0, 1, 2, 3)
	c.requireOneCluster(0, 1)
	c.requireOneCluster(2, 3)
	listed := time.Now()
	c.setRecords(c.addrs(0, 1, 2, 3))
	c.requireOneCluster(0, 1, 2, 3)
	t.Logf("the islands merged %v after the name listed every node (RejoinInterval 10s)", time.Since(listed).Round(time.Millisecond))
}

// dnsCluster is four demo nodes (the fourth for the islands), each in
// its namespace, and two dnsmasqs, each in its own: n1 and n2 ask the
// first, n3 and n4 the second.
type dnsCluster struct {
	t       *testing.T
	nt      *netns.Net
	dns     [2]*dnsServer
	names   []string
	keyFile string
	procs   []*nodeProc // node i's current process
}

func newDNSCluster(t *testing.T) *dnsCluster {
	c := &dnsCluster{t: t, nt: newNetns(t, 6), names: []string{"n1", "n2", "n3", "n4"}}
	c.procs = make([]*nodeProc, len(c.names))
	c.keyFile = filepath.Join(t.TempDir(), "cluster.key")
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, os.WriteFile(c.keyFile, []byte(key+"\n"), 0o600))
	for k := range c.dns {
		c.dns[k] = startDNS(t, c.nt, len(c.names)+k)
	}
	for i := range c.names {
		require.NoError(t, c.nt.SetNameserver(i, c.dnsOf(i).addr()))
	}
	return c
}

// dnsOf returns the dnsmasq node i asks.
func (c *dnsCluster) dnsOf(i int) *dnsServer { return c.dns[i/2] }

// setRecords makes both dnsmasqs answer the name with addrs.
func (c *dnsCluster) setRecords(addrs []string) {
	for _, d := range c.dns {
		d.setRecords(c.t, addrs)
	}
}

// addrs returns the current addresses of nodes idx.
func (c *dnsCluster) addrs(idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, c.nt.Addr(i))
	}
	return out
}

// start starts nodes idx at once, each on its namespace's address and
// joining peersName, and checks that each asked dnsmasq for it.
func (c *dnsCluster) start(idx ...int) {
	t := c.t
	t.Helper()
	names := make([]string, len(idx))
	for k, i := range idx {
		names[k] = c.names[i]
	}
	procs, err := startNodes(t, names, func(k int) nodeOptions {
		i := idx[k]
		return nodeOptions{Prefix: c.nt.Prefix(i), Args: []string{
			"-http", c.nt.Addr(i) + ":8080", "-gossip", c.nt.Addr(i) + ":7946",
			"-join", peersName + ":7946", "-key-file", c.keyFile,
		}}
	})
	require.NoError(t, err)
	for k, i := range idx {
		c.procs[i] = procs[k]
		// The node asked the dnsmasq its namespace's resolv.conf names:
		// ip netns exec's bind mount reached the demo's resolver (the
		// host's resolver knows no such name).
		// (dnsmasq's log reaches the test through a pipe of its own, so
		// its line may come a moment after the node is ready.)
		waitUntil(t, 10*time.Second, func() (bool, string) {
			return c.dnsOf(i).queried(c.nt.Addr(i)), "no such query in its log"
		}, "node %s never asked dnsmasq at %s for %s", names[k], c.dnsOf(i).addr(), peersName)
	}
}

// requireOneCluster waits until each of nodes idx lists exactly nodes
// idx as members.
func (c *dnsCluster) requireOneCluster(idx ...int) {
	c.t.Helper()
	var want []string
	for _, i := range idx {
		want = append(want, c.names[i])
	}
	for _, i := range idx {
		requireMembers(c.t, c.procs[i], want...)
	}
}

// stopAll stops every node started at once, as a rollout of every pod
// does.
func (c *dnsCluster) stopAll() {
	errs := make([]error, len(c.procs))
	var wg sync.WaitGroup
	for i, p := range c.procs {
		if p != nil {
			wg.Go(func() { errs[i] = p.Terminate() })
		}
	}
	wg.Wait()
	require.NoError(c.t, errors.Join(errs...))
}

// renumberAll gives every node's namespace a new address, and returns
// the old ones.
func (c *dnsCluster) renumberAll() (old []string) {
	for i := range c.names {
		old = append(old, c.nt.Addr(i))
		_, err := c.nt.Renumber(i)
		require.NoError(c.t, err)
	}
	return old
}

// newNetns is netns.New for a test: it skips where namespaces cannot be
// made (fails in CI) and closes them when the test ends.
func newNetns(t *testing.T, n int) *netns.Net {
	t.Helper()
	nt, err := netns.New("twonode", n)
	if errors.Is(err, netns.ErrUnavailable) {
		skipOutsideCI(t, err.Error())
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, nt.Close()) })
	return nt
}

// skipOutsideCI skips the test, or fails it in CI (CI set), where what
// it needs is installed and a skip would pass without checking anything.
func skipOutsideCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: test.sh installs what this test needs, so it must run)", why)
	}
	t.Skip(why)
}

// dnsServer is a dnsmasq answering for peersName from a hosts file.
type dnsServer struct {
	nt    *netns.Net
	ns    int // the namespace it runs in
	hosts string
	cmd   *exec.Cmd
	log   *testlog.Buffer
}

// startDNS runs dnsmasq in namespace ns, authoritative for nothing but
// the names in its hosts file (see setRecords), with no upstream server,
// and logging every query.
func startDNS(t *testing.T, nt *netns.Net, ns int) *dnsServer {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dnsmasq"); serr != nil {
			skipOutsideCI(t, "no dnsmasq: apt-get install dnsmasq-base (test.sh does)")
		}
		bin = "/usr/sbin/dnsmasq"
	}
	d := &dnsServer{nt: nt, ns: ns, hosts: filepath.Join(t.TempDir(), "hosts"), log: new(testlog.Buffer)}
	require.NoError(t, os.WriteFile(d.hosts, nil, 0o644))
	d.cmd = nt.Command(context.Background(), ns, bin,
		"--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
		"--user=root", // reads the hosts file in the test's directory again on SIGHUP
		"--no-resolv", "--no-hosts", "--addn-hosts="+d.hosts,
		"--listen-address="+d.addr(), "--bind-interfaces",
		"--log-queries", "--log-facility=-")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	require.NoError(t, d.cmd.Start())
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("dnsmasq's log:\n%s", d.log.String())
		}
	})
	// Until dnsmasq has read its hosts file, it has not yet set its
	// signal handlers, and setRecords' SIGHUP would end it.
	waitUntil(t, 30*time.Second, func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("dnsmasq exited: %v", d.cmd.ProcessState)
		default:
		}
		return strings.Contains(d.log.String(), "read "+d.hosts), "no line \"read " + d.hosts + "\" in its log"
	}, "dnsmasq did not start")
	return d
}

// setRecords makes peersName resolve to addrs, and waits until dnsmasq
// answers with exactly those.
func (d *dnsServer) setRecords(t *testing.T, addrs []string) {
	var b strings.Builder
	for _, a := range addrs {
		b.WriteString(a + " " + peersName + "\n")
	}
	require.NoError(t, os.WriteFile(d.hosts, []byte(b.String()), 0o644))
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGHUP)) // reread the hosts file
	want := slices.Sorted(slices.Values(addrs))
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, net.JoinHostPort(d.addr(), "53"))
	}}
	waitUntil(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		got, err := r.LookupHost(ctx, peersName)
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprintf("%v (%v)", got, err)
	}, "dnsmasq does not answer %s with %v", peersName, want)
}

// addr returns the address dnsmasq answers on.
func (d *dnsServer) addr() string { return d.nt.Addr(d.ns) }

// queried reports whether dnsmasq logged a query for peersName from addr.
func (d *dnsServer) queried(addr string) bool {
	for _, line := range strings.Split(d.log.String(), "\n") {
		if strings.Contains(line, "query[A] "+peersName+" from "+addr) {
			return true
		}
	}
	return false
}
