package netns

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The faults a chaos harness injects between namespaces: packets from one
// namespace to another dropped as they arrive, silently, as on a
// partitioned network (a policy-routing rule "from ADDR blackhole" in the
// receiver, consulted before the local table), and latency and loss (tc
// netem). The host's traffic to each namespace is never cut. Heal undoes
// both.

// cutPref is the priority of Cut's rules; the local table's rule moves
// behind them (localPref) at a namespace's first Cut.
const (
	cutPref   = "1000"
	localPref = "32765"
)

// ErrNoNetem is returned (wrapped) by Netem when the kernel has no netem
// queueing discipline (CONFIG_NET_SCH_NETEM), as some VM kernels do not,
// or there is no tc command.
var ErrNoNetem = errors.New("netns: no tc netem here")

// Cut drops every packet namespace from sends to namespace to, on
// arrival and silently: a one-way partition (the reverse direction still
// delivers, so a TCP connection stalls and a UDP ping arrives but its
// answer does not). Cut both ways for a full partition. Heal removes it.
func (nt *Net) Cut(from, to int) error {
	if from == to {
		return fmt.Errorf("netns: Cut(%d, %d): a namespace cannot be cut from itself", from, to)
	}
	ns := nt.names[to]
	out, err := ip("-n", ns, "rule", "show", "pref", "0")
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(out))) > 0 {
		// Packets for a local address match the local table's rule
		// (priority 0) before any other: move it behind the cuts.
		if _, err := ip("-n", ns, "rule", "add", "pref", localPref, "lookup", "local"); err != nil {
			return err
		}
		if _, err := ip("-n", ns, "rule", "del", "pref", "0"); err != nil {
			return err
		}
	}
	src := nt.Addr(from)
	out, err = ip("-n", ns, "rule", "show", "pref", cutPref, "from", src)
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		return err // already cut
	}
	_, err = ip("-n", ns, "rule", "add", "pref", cutPref, "from", src, "blackhole")
	return err
}

// Netem delays every packet namespace i sends by delay and drops
// lossPercent of them (0 to 100), replacing what an earlier Netem set.
// It needs tc (Debian's iproute2); Heal removes it.
func (nt *Net) Netem(i int, delay time.Duration, lossPercent float64) error {
	if delay < 0 || lossPercent < 0 || lossPercent > 100 {
		return fmt.Errorf("netns: Netem(%d, %v, %v): want a delay ≥ 0 and a loss of 0 to 100 percent", i, delay, lossPercent)
	}
	if _, err := exec.LookPath("tc"); err != nil {
		return fmt.Errorf("%w: Netem needs tc (install iproute2): %v", ErrNoNetem, err)
	}
	err := nt.tc(i, "qdisc", "replace", "dev", "eth0", "root", "netem",
		"delay", strconv.FormatInt(delay.Microseconds(), 10)+"us",
		"loss", strconv.FormatFloat(lossPercent, 'f', -1, 64)+"%")
	if err != nil && strings.Contains(err.Error(), "qdisc kind is unknown") {
		return fmt.Errorf("%w: the kernel has no netem (CONFIG_NET_SCH_NETEM): %v", ErrNoNetem, err)
	}
	return err
}

// Heal removes every Cut and Netem in every namespace.
func (nt *Net) Heal() error {
	var errs []error
	for i, ns := range nt.names {
		for {
			out, err := ip("-n", ns, "rule", "show", "pref", cutPref)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if len(strings.TrimSpace(string(out))) == 0 {
				break
			}
			if _, err := ip("-n", ns, "rule", "del", "pref", cutPref); err != nil {
				errs = append(errs, err)
				break
			}
		}
		on, err := nt.netemOn(i)
		if err != nil {
			errs = append(errs, err)
		}
		if on {
			errs = append(errs, nt.tc(i, "qdisc", "del", "dev", "eth0", "root"))
		}
	}
	return errors.Join(errs...)
}

// netemOn reports whether namespace i's eth0 has a netem qdisc.
func (nt *Net) netemOn(i int) (bool, error) {
	if _, err := exec.LookPath("tc"); err != nil {
		return false, nil // no tc, so no Netem was ever set
	}
	out, err := exec.Command("ip", "netns", "exec", nt.names[i], "tc", "qdisc", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("netns: tc qdisc show in %s: %w: %s", nt.names[i], err, strings.TrimSpace(string(out)))
	}
	return strings.Contains(string(out), "netem"), nil
}

// tc runs tc with args in namespace i.
func (nt *Net) tc(i int, args ...string) error {
	out, err := exec.Command("ip", append([]string{"netns", "exec", nt.names[i], "tc"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netns: tc %s in %s: %w: %s", strings.Join(args, " "), nt.names[i], err, strings.TrimSpace(string(out)))
	}
	return nil
}
