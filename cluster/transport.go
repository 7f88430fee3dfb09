package cluster

import (
	"fmt"
	"strings"

	"github.com/hashicorp/memberlist"
)

// wrapTransport sets mlc.Transport to what memberlist is to use: the
// transport Tune set, or else memberlist's usual one, wrapped by wrap
// (Config.WrapTransport) if set, and then by guard (the gossip port's
// limits), outermost. Memberlist's usual transport is built as
// memberlist.Create builds it: a NetTransport on BindAddr and BindPort,
// retried on a port clash when the port is picked by the kernel, whose
// bound port then becomes BindPort (and AdvertisePort unless that is set).
func wrapTransport(mlc *memberlist.Config, wrap, guard func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport) error {
	if wrap == nil {
		wrap = func(t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport { return t }
	}
	if mlc.Transport != nil {
		base, ok := mlc.Transport.(memberlist.NodeAwareTransport)
		if !ok {
			return fmt.Errorf("cluster: memberlist's transport must be a memberlist.NodeAwareTransport, Tune set a %T", mlc.Transport)
		}
		mlc.Transport = guard(wrap(base))
		return nil
	}
	nc := &memberlist.NetTransportConfig{
		BindAddrs:    []string{mlc.BindAddr},
		BindPort:     mlc.BindPort,
		Logger:       mlc.Logger,
		MetricLabels: mlc.MetricLabels,
	}
	tries := 1
	if mlc.BindPort == 0 {
		tries = 10 // the UDP port may be taken where the kernel gave us TCP
	}
	var nt *memberlist.NetTransport
	var err error
	for range tries {
		if nt, err = memberlist.NewNetTransport(nc); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cluster: memberlist transport: %w", withErrno(err))
	}
	if mlc.BindPort == 0 {
		mlc.BindPort = nt.GetAutoBindPort()
		if mlc.AdvertisePort == 0 {
			mlc.AdvertisePort = mlc.BindPort
		}
	}
	mlc.Transport = guard(wrap(nt))
	return nil
}
