package netns

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// A run's names. Its ID is "PREFIX-PID-SEQ": the prefix given to New,
// the creating process and a sequence number within it. Namespace i is
// "ID-i" (with /etc/netns/ID-i for its files). Interface names are at
// most 15 bytes, so the bridge is "nb" and 8 hex digits of a hash of the
// ID, which it also carries as its alias (ip link's ifalias) for Sweep,
// and namespace i's veth is that with "v" and i on the host's side, and
// eth0 inside the namespace.

// validPrefix is what New takes as a prefix: short, and without the
// dash that separates the ID's parts.
var validPrefix = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// seq numbers the Nets of this process.
var seq atomic.Int64

// runID returns a new run ID for prefix.
func runID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
}

// ifStem is the hashed part of the run's interface names.
func ifStem(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%08x", h.Sum32())
}

func bridgeName(id string) string      { return "nb" + ifStem(id) }
func vethName(id string, i int) string { return "nb" + ifStem(id) + "v" + strconv.Itoa(i) }
func nsName(id string, i int) string   { return id + "-" + strconv.Itoa(i) }

// etcDir is where ip netns exec finds namespace ns's own /etc files.
func etcDir(ns string) string { return filepath.Join("/etc/netns", ns) }

// owner returns the process ID in a run ID or namespace name of prefix,
// and whether name is one.
func owner(prefix, name string) (pid int, ok bool) {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok {
		return 0, false
	}
	parts := strings.Split(rest, "-")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return 0, false
		}
	}
	pid, _ = strconv.Atoi(parts[0])
	return pid, pid > 0
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// killAll kills (SIGKILL) the processes still running in namespace ns.
func killAll(ns string) error {
	out, err := ip("netns", "pids", ns)
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL) // gone already is fine
		}
	}
	return nil
}

// Sweep removes the namespaces (killing what still runs in them),
// bridges and /etc/netns directories that runs with this prefix left
// behind when their process died without Close (a test binary killed at
// its timeout). What belongs to a process still running is left alone.
// New calls it.
func Sweep(prefix string) error {
	if err := available(); err != nil {
		return err
	}
	var errs []error
	var bridges []struct {
		Name  string `json:"ifname"`
		Alias string `json:"ifalias"`
	}
	if err := ipJSON(&bridges, "link", "show", "type", "bridge"); err != nil {
		errs = append(errs, err)
	}
	for _, b := range bridges {
		if pid, ok := owner(prefix, b.Alias); ok && !alive(pid) && b.Name == bridgeName(b.Alias) {
			_, err := ip("link", "del", b.Name)
			errs = append(errs, err)
		}
	}
	var namespaces []struct {
		Name string `json:"name"`
	}
	if err := ipJSON(&namespaces, "netns", "list"); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range namespaces {
		if pid, ok := owner(prefix, ns.Name); ok && !alive(pid) {
			errs = append(errs, killAll(ns.Name))
			_, err := ip("netns", "del", ns.Name)
			errs = append(errs, err)
		}
	}
	dirs, _ := os.ReadDir("/etc/netns")
	for _, d := range dirs {
		if pid, ok := owner(prefix, d.Name()); ok && !alive(pid) {
			errs = append(errs, os.RemoveAll(etcDir(d.Name())))
		}
	}
	return errors.Join(errs...)
}
