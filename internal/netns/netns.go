package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Net is a bridge on the host and namespaces attached to it, each with
// one address. Its methods may be called from several goroutines.
type Net struct {
	id     string
	octet  int // the subnet's third octet
	bridge string
	names  []string // namespace i's name

	mu     sync.Mutex // guards addrs, next and closed
	addrs  []int      // namespace i's host number in the subnet
	next   int        // the host number Renumber hands out next
	closed bool
}

// New makes n namespaces on a new bridge, namespace i with address
// Addr(i) in a /24 of 10.77.0.0/16 that the host does not use otherwise,
// its loopback up, and the host reaching each of them at HostAddr. prefix
// (a lower-case letter, then up to 11 letters or digits) starts every
// name New makes; New first sweeps away what dead runs with this prefix
// left (see Sweep). The error wraps ErrUnavailable when namespaces cannot
// be made here. Close removes everything.
func New(prefix string, n int) (*Net, error) {
	if !validPrefix.MatchString(prefix) {
		return nil, fmt.Errorf("netns: prefix %q: use a lower-case letter then up to 11 lower-case letters or digits", prefix)
	}
	if n < 1 || n > 100 {
		return nil, fmt.Errorf("netns: %d namespaces: use 1 to 100", n)
	}
	if err := available(); err != nil {
		return nil, err
	}
	if err := Sweep(prefix); err != nil {
		return nil, fmt.Errorf("netns: sweeping what earlier runs left: %w", err)
	}
	id := runID(prefix)
	nt := &Net{id: id, bridge: bridgeName(id), next: n + 1}
	for i := range n {
		nt.names = append(nt.names, nsName(id, i))
		nt.addrs = append(nt.addrs, i+1)
	}
	if err := nt.build(); err != nil {
		return nil, errors.Join(err, nt.Close())
	}
	return nt, nil
}

// build makes the bridge, then each namespace and its veth.
func (nt *Net) build() error {
	if _, err := ip("netns", "add", nt.names[0]); err != nil {
		if strings.Contains(err.Error(), "not permitted") {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return err
	}
	err := withSubnet(func(octet int) error {
		nt.octet = octet
		if _, err := ip("link", "add", nt.bridge, "type", "bridge"); err != nil {
			return err
		}
		_, err := ip("addr", "add", addrOf(octet, hostNumber)+"/24", "dev", nt.bridge)
		return err
	})
	if err != nil {
		return err
	}
	for _, args := range [][]string{
		{"link", "set", nt.bridge, "alias", nt.id}, // for Sweep
		{"link", "set", nt.bridge, "up"},
	} {
		if _, err := ip(args...); err != nil {
			return err
		}
	}
	for i, ns := range nt.names {
		veth := vethName(nt.id, i)
		cmds := [][]string{
			{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"link", "set", veth, "master", nt.bridge, "up"},
			{"-n", ns, "addr", "add", nt.Addr(i) + "/24", "dev", "eth0"},
			{"-n", ns, "link", "set", "eth0", "up"},
			{"-n", ns, "link", "set", "lo", "up"},
		}
		if i > 0 {
			cmds = append([][]string{{"netns", "add", ns}}, cmds...)
		}
		for _, args := range cmds {
			if _, err := ip(args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Len returns the number of namespaces.
func (nt *Net) Len() int { return len(nt.names) }

// Name returns namespace i's name, for `ip netns exec NAME` or
// `ip -n NAME`.
func (nt *Net) Name(i int) string { return nt.names[i] }

// Addr returns namespace i's address, such as "10.77.12.3".
func (nt *Net) Addr(i int) string {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return addrOf(nt.octet, nt.addrs[i])
}

// HostAddr returns the bridge's address: where the namespaces reach the
// host (which reaches each of them directly at Addr(i)).
func (nt *Net) HostAddr() string { return addrOf(nt.octet, hostNumber) }

// Prefix returns the command prefix that runs a program in namespace i:
// ip netns exec NAME. ip execs the program, so that signals sent to the
// process reach the program itself.
func (nt *Net) Prefix(i int) []string { return []string{"ip", "netns", "exec", nt.names[i]} }

// Command returns a command that runs name with args in namespace i,
// seeing namespace i's own /etc files (see WriteEtc); ctx kills it as
// exec.CommandContext does, and so does the death of the process that
// starts it (SysProcAttr.Pdeathsig), so that nothing outlives a crashed
// run.
func (nt *Net) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	argv := append(nt.Prefix(i)[1:], name)
	cmd := exec.CommandContext(ctx, "ip", append(argv, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Renumber gives namespace i a new address in the subnet, one no
// namespace of this Net has had, in place of its current one, and
// returns it. Connections on the old address break; a program listening
// on it must be restarted (as a node restarted on a new address would
// be).
func (nt *Net) Renumber(i int) (string, error) {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.next > maxHosts {
		return "", fmt.Errorf("netns: every address of %s/24 has been handed out; make a new Net", addrOf(nt.octet, 0))
	}
	// The old address goes first: deleting a primary address deletes the
	// secondary ones of its subnet with it (net.ipv4.conf.*.promote_secondaries).
	old, h := addrOf(nt.octet, nt.addrs[i]), nt.next
	if _, err := ip("-n", nt.names[i], "addr", "del", old+"/24", "dev", "eth0"); err != nil {
		return "", err
	}
	nt.next = h + 1
	if _, err := ip("-n", nt.names[i], "addr", "add", addrOf(nt.octet, h)+"/24", "dev", "eth0"); err != nil {
		return "", err
	}
	nt.addrs[i] = h
	return addrOf(nt.octet, h), nil
}

// WriteEtc writes file (a name such as "resolv.conf" or "hosts") in
// namespace i's own /etc: programs started with Command or Prefix see it
// in place of the host's /etc/file, which must exist (ip netns exec
// bind-mounts one over the other). It takes effect for programs started
// after it.
func (nt *Net) WriteEtc(i int, file, content string) error {
	if file == "" || strings.Contains(file, "/") || file == "." || file == ".." {
		return fmt.Errorf("netns: WriteEtc: %q is not a file name in /etc", file)
	}
	if _, err := os.Stat(filepath.Join("/etc", file)); err != nil {
		return fmt.Errorf("netns: WriteEtc: the host has no /etc/%s for ip netns exec to mount %s over: %w", file, file, err)
	}
	dir := etcDir(nt.names[i])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// SetNameserver makes addr the only DNS server of the programs started
// in namespace i afterwards (its own resolv.conf).
func (nt *Net) SetNameserver(i int, addr string) error {
	return nt.WriteEtc(i, "resolv.conf", "nameserver "+addr+"\n")
}

// Close removes the namespaces, their /etc files and the bridge. Stop
// the programs running in the namespaces first: a namespace lives on
// until its last process exits. It is safe to call more than once.
func (nt *Net) Close() error {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	if nt.closed {
		return nil
	}
	nt.closed = true
	var errs []error
	for _, ns := range nt.names {
		if exists("/run/netns/" + ns) {
			_, err := ip("netns", "del", ns)
			errs = append(errs, err)
		}
		errs = append(errs, os.RemoveAll(etcDir(ns)))
	}
	if exists("/sys/class/net/" + nt.bridge) {
		_, err := ip("link", "del", nt.bridge)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
