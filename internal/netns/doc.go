// Package netns builds small private networks for tests and lab scripts:
// a Linux bridge and N network namespaces, each with its own address on
// it, so that several nodes can run on one machine as if on several, be
// renumbered, be given their own /etc/resolv.conf, and (for the chaos
// harness) be cut off from each other.
//
//	n, err := netns.New("dns", 3)
//	if errors.Is(err, netns.ErrUnavailable) {
//		t.Skip(err) // not root, or no iproute2
//	}
//	defer n.Close()
//	cmd := n.Command(ctx, 0, "./twonode", "-node", "a", "-gossip", n.Addr(0)+":7946")
//
// It needs root and iproute2's ip command, nothing else. Every name it
// makes carries the prefix given to New, the creating process's ID and a
// sequence number, so runs at the same time do not clash, and New sweeps
// away what a crashed run with the same prefix left behind.
package netns
