package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// joinSeeds asks each seed in turn to take this node in (a memberlist
// push/pull). It returns nil if one did; a *JoinError if none did and at
// least one answered but refused this node (keys, label, name: retrying
// will not help); otherwise an error saying that no seed was reachable.
// Refusals by some seeds while another took the node in are logged.
func (n *Node) joinSeeds(seeds []string) error {
	var (
		joined      int
		refused     []*JoinError
		unreachable []error
	)
	for _, s := range seeds {
		err := n.joinSeed(s)
		if err == nil {
			joined++
			continue
		}
		if je := n.refusal(s, err); je != nil {
			refused = append(refused, je)
			continue
		}
		unreachable = append(unreachable, unwrapJoin(err)...)
	}
	n.refused.Store(joined == 0 && len(refused) > 0)
	switch {
	case joined == 0 && len(refused) > 0:
		return refused[0]
	case joined == 0:
		return fmt.Errorf("cluster: join: no seed reachable: %w", errors.Join(unreachable...))
	}
	for _, je := range refused {
		if k, ok := n.refusalLog.Allow(time.Now(), 1); ok {
			n.log.Warn("cluster: a seed refused this node; joined through another", "err", je, "refusals", k)
		}
	}
	return nil
}

// joinSeed joins one seed. A seed that closes the connection without a
// word is asked once more before that counts as a refusal: a seed in the
// middle of shutting down may do it once, and is gone the second time.
func (n *Node) joinSeed(seed string) error {
	n.names.takeTaken() // what an earlier join found is not this one's
	n.names.takeCopies()
	_, err := n.ml.Join([]string{seed})
	if err != nil && closedWithoutReply(err) {
		n.names.takeTaken()
		n.names.takeCopies()
		_, err = n.ml.Join([]string{seed})
	}
	return err
}

// memberlist's words when a push/pull fails for want of a shared key: the
// seed's reply could not be decrypted (it could not decrypt ours, and said
// so with its key), or only one side encrypts.
const (
	mlKeysDiffer       = "no installed keys could decrypt the message"
	mlOnlySeedEncrypts = "remote state is encrypted and encryption is not configured"
	mlOnlyWeEncrypt    = "encryption is configured but remote state is not encrypted"
)

// refusal returns the JoinError for memberlist's error joining seed, or
// nil if the seed did not answer (or failed in a way that may pass).
func (n *Node) refusal(seed string, err error) *JoinError {
	if c, ok := n.names.takeCopies(); ok {
		return &JoinError{Seed: seed, Err: ErrCopiesDiffer, Holder: c.peer, text: fieldText{
			"seed %s answered, but member %s (%s) has {Copies} %d and this node %d: give every node the same {Copies} (0 means every member holds everything)",
			[]any{seed, c.peer.ID, c.peer.Gossip, c.copies, n.cfg.Copies}}}
	}
	if holder, ok := n.names.takeTaken(); ok {
		return &JoinError{Seed: seed, Err: ErrNameTaken, Holder: holder, text: fieldText{
			"seed %s answered, but {Name} %q is taken: node %s (%s) is alive with that name; give each node its own {Name}",
			[]any{seed, n.self.Name, holder.ID, holder.Gossip}}}
	}
	const answered = "seed %s answered but could not authenticate this node: "
	je := &JoinError{Seed: seed, Err: ErrKeysDiffer}
	switch msg := strings.ToLower(err.Error()); {
	case strings.Contains(msg, mlKeysDiffer):
		je.text = fieldText{answered + "the cluster keys differ ({Keys}): give every node the same key", []any{seed}}
	case strings.Contains(msg, mlOnlySeedEncrypts):
		je.text = fieldText{answered + "the seed uses a cluster key and this node has none ({Keys}): give every node the same key", []any{seed}}
	case strings.Contains(msg, mlOnlyWeEncrypt):
		je.text = fieldText{answered + "this node has a cluster key ({Keys}) and the seed has none: give every node the same key", []any{seed}}
	case closedWithoutReply(err):
		je.Err = ErrLabelsDiffer
		je.text = fieldText{"seed %s answered but closed the connection without a reply, as a node with another cluster label does: " +
			"this node's {Label} is %q; give every node the same label (or the seed is not a cluster node's gossip address)",
			[]any{seed, n.cfg.Label}}
	default:
		return nil
	}
	return je
}

// closedWithoutReply reports whether memberlist's join error is the seed
// closing the connection it accepted before any reply, as memberlist does
// when the label differs: the joining node reads an end of file, or a
// reset when the seed closed with the joining node's message unread.
func closedWithoutReply(err error) bool {
	msg := strings.TrimSpace(err.Error())
	return strings.HasSuffix(msg, ": EOF") || strings.HasSuffix(msg, ": connection reset by peer") ||
		strings.HasSuffix(msg, ": broken pipe")
}

// unwrapJoin returns the errors in memberlist's Join error (a
// go-multierror of "failed to join host:port: ..." lines).
func unwrapJoin(err error) []error {
	var m interface{ WrappedErrors() []error }
	if errors.As(err, &m) {
		return m.WrappedErrors()
	}
	return []error{err}
}

func (n *Node) rejoinLoop(seeds []string) {
	// A node that sees no peer at all (it started first, or was cut off)
	// tries every second, up to RejoinInterval; one with peers resolves
	// its seeds every RejoinInterval and joins the addresses that are not
	// members yet (a name may stand for many nodes, and for new
	// addresses after they all restarted).
	alone := min(time.Second, n.cfg.RejoinInterval)
	t := time.NewTimer(alone)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		t.Reset(alone)
		slow := len(n.Peers()) > 0 || n.refused.Load() // a refused node retries seldom: it is misconfigured
		if n.left.Load() || (slow && time.Since(last) < n.cfg.RejoinInterval) {
			continue
		}
		last = time.Now()
		targets := n.unknownSeeds(seeds)
		if len(targets) == 0 {
			continue
		}
		var je *JoinError
		switch err := n.joinSeeds(targets); {
		case errors.As(err, &je):
			if k, ok := n.refusalLog.Allow(time.Now(), 1); ok {
				n.log.Warn("cluster: re-join refused", "err", err, "refusals", k)
			}
		case err != nil:
			n.log.Debug("cluster: re-join failed", "err", err)
		default:
			n.log.Debug("cluster: re-joined", "seeds", len(targets))
		}
	}
}

// unknownSeeds resolves seeds and returns the gossip addresses among them
// that are neither this node's nor a live member's: what a re-join should
// try. A seed whose name does not resolve is kept as it is (joining it
// reports why).
func (n *Node) unknownSeeds(seeds []string) []string {
	known := map[string]bool{n.GossipAddr(): true}
	for _, p := range n.Peers() {
		known[p.Gossip] = true
	}
	lookup := n.cfg.LookupHost
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	var out []string
	add := func(addr string) {
		if !known[addr] {
			known[addr] = true
			out = append(out, addr)
		}
	}
	for _, s := range seeds {
		host, port, err := net.SplitHostPort(s)
		if err != nil || net.ParseIP(host) != nil {
			add(s)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.DialTimeout)
		addrs, err := lookup(ctx, host)
		cancel()
		if err != nil {
			n.log.Debug("cluster: seed name not resolved", "name", host, "err", err)
			add(s)
			continue
		}
		for _, a := range addrs {
			add(net.JoinHostPort(a, port))
		}
	}
	return out
}
