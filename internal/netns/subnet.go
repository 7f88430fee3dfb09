package netns

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A run's addresses are in a /24 of 10.77.0.0/16 that no interface of the
// host uses: namespace i starts at .i+1, the bridge (the host's side) is
// .254, and Renumber hands out the addresses after the last one used.
const (
	base       = "10.77."
	hostNumber = 254
	maxHosts   = 253 // .1 to .253
)

// lockPath serializes the choice of subnets between processes.
const lockPath = "/run/lock/peersession-netns.lock"

// withSubnet calls assign with a /24 (its third octet) that no interface
// of the host has an address in, holding a lock that other runs take to
// choose theirs, so that two runs never pick the same one. assign gives
// the subnet to an interface before the lock is released.
func withSubnet(assign func(octet int) error) error {
	unlock, err := lockFile(lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	used, err := usedSubnets()
	if err != nil {
		return err
	}
	start := rand.IntN(256)
	for k := range 256 {
		octet := (start + k) % 256
		if !used[octet] {
			return assign(octet)
		}
	}
	return fmt.Errorf("netns: every /24 of %s0.0/16 is in use on this host; remove leftovers with Sweep", base)
}

// usedSubnets returns the third octets of the 10.77.x.0/24 subnets in
// which some interface of the host has an address.
func usedSubnets() (map[int]bool, error) {
	var links []struct {
		Addrs []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := ipJSON(&links, "-4", "addr", "show"); err != nil {
		return nil, err
	}
	used := map[int]bool{}
	for _, l := range links {
		for _, a := range l.Addrs {
			rest, ok := strings.CutPrefix(a.Local, base)
			if !ok {
				continue
			}
			third, _, _ := strings.Cut(rest, ".")
			if o, err := strconv.Atoi(third); err == nil {
				used[o] = true
			}
		}
	}
	return used, nil
}

// lockFile takes an exclusive lock on path (made if missing) and
// returns its release.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("netns: lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("netns: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("netns: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// addrOf returns the address of host number h in subnet octet.
func addrOf(octet, h int) string { return fmt.Sprintf("%s%d.%d", base, octet, h) }
