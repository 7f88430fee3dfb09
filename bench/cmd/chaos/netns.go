package main

import (
	"errors"
	"time"

	"github.com/peersession/peersession/internal/netns"
)

// nsNetwork runs node i in namespace i of a netns.Net: a bridge, an
// address per node, the harness reaching each from the host.
type nsNetwork struct{ nt *netns.Net }

// newNetns makes n namespaces; netem reports whether tc netem works here
// (some VM kernels have none).
func newNetns(n int) (nw network, netem bool, err error) {
	nt, err := netns.New("chaos", n)
	if err != nil {
		return nil, false, err
	}
	err = nt.Netem(0, time.Millisecond, 0)
	switch {
	case errors.Is(err, netns.ErrNoNetem):
	case err != nil:
		return nil, false, errors.Join(err, nt.Close())
	default:
		netem = true
	}
	if err := nt.Heal(); err != nil {
		return nil, false, errors.Join(err, nt.Close())
	}
	return nsNetwork{nt}, netem, nil
}

func (n nsNetwork) Host(i int) string     { return n.nt.Addr(i) }
func (n nsNetwork) Prefix(i int) []string { return n.nt.Prefix(i) }
func (n nsNetwork) Heal() error           { return n.nt.Heal() }
func (n nsNetwork) Close() error          { return n.nt.Close() }

func (n nsNetwork) Drop(from, to []int) error {
	for _, f := range from {
		for _, t := range to {
			if err := n.nt.Cut(f, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n nsNetwork) Netem(i int, delay time.Duration, loss int) error {
	return n.nt.Netem(i, delay, float64(loss))
}
