package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peersession/peersession/internal/defaults"
)

// Defaults for zero Config fields.
const (
	DefaultRejoinInterval = 10 * time.Second
	DefaultDialTimeout    = 2 * time.Second
	DefaultMaxFrame       = 16 << 20
	// KeySize is the required length of every keyring key.
	KeySize = 32
	// maxNameLen bounds Config.Name so that node metadata always fits.
	maxNameLen = 128
)

// Config configures a Node. Zero fields take the documented defaults. The
// Config is copied by New; changing it afterwards has no effect.
type Config struct {
	// Name is the configured node name; required, at most 128 bytes. It is
	// kept in node metadata; the memberlist name is Name plus a random
	// suffix (see Peer.ID).
	Name string
	// BindAddr is the IP to bind gossip and the stream listener to; ""
	// means 127.0.0.1.
	BindAddr string
	// BindPort is the gossip port (TCP and UDP); 0 picks a free port.
	// When it is taken, New fails with an error that errors.Is matches to
	// syscall.EADDRINUSE.
	BindPort int
	// AdvertiseAddr is the IP other nodes reach this one at; "" means
	// BindAddr. Binding 0.0.0.0 or :: without an AdvertiseAddr is an error.
	AdvertiseAddr string
	// AdvertisePort is the advertised gossip port; 0 means the bound one.
	AdvertisePort int
	// StreamPort is the replication stream listener port on BindAddr; 0
	// picks a free port. It is advertised in node metadata.
	StreamPort int
	// Seeds are gossip "host:port" addresses of nodes to join.
	Seeds []string
	// RejoinInterval is how often Seeds are joined again while this node
	// sees fewer live peers than it has seeds (partition heal, restarts);
	// zero means 10s.
	RejoinInterval time.Duration
	// Label is the memberlist label (one per cluster); it is also part of
	// the Noise prologue, so clusters with different labels cannot talk.
	Label string
	// Keys is the keyring: 32-byte keys, Keys[0] the primary one used to
	// encrypt; the others are still accepted (key rotation). Gossip is
	// AES-GCM encrypted with them and streams derive their Noise PSK from
	// them.
	Keys [][]byte
	// Insecure allows running without Keys on a non-loopback BindAddr.
	// Without it New refuses, since anyone who can reach the ports could
	// read and inject sessions.
	Insecure bool
	// Logger receives cluster and memberlist logs; nil discards them.
	Logger *slog.Logger
	// Handler receives membership events and frames; required.
	Handler Handler
	// Tune, if set, is applied last to the memberlist configuration (tests
	// shorten probe, suspicion and gossip timers with it).
	Tune func(*memberlist.Config)
	// DialTimeout bounds dialing a peer's stream plus its handshake, and
	// the handshake of an incoming stream; zero means 2s.
	DialTimeout time.Duration
	// MaxFrame is the largest frame Send accepts and a reader reassembles;
	// zero means 16 MiB.
	MaxFrame int

	// Network hooks, for tests that inject faults (internal/faultnet); nil
	// means the plain network. They see every byte the node sends, so
	// never set them from untrusted input.

	// WrapTransport, if set, wraps memberlist's transport: New builds
	// memberlist's usual NetTransport on BindAddr and BindPort (or takes
	// the one Tune set) and hands memberlist what WrapTransport returns.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
	// Dial, if set, opens replication stream connections in place of a
	// net.Dialer; it must honour ctx (its deadline bounds the dial).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// WrapListener, if set, wraps the replication stream listener; the
	// wrapper's Addr must be the listener's own.
	WrapListener func(net.Listener) net.Listener
}

// withDefaults validates c and returns a copy with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		return c, errors.New("cluster: Config.Name is required")
	}
	if len(c.Name) > maxNameLen {
		return c, fmt.Errorf("cluster: Config.Name is %d bytes, at most %d allowed", len(c.Name), maxNameLen)
	}
	if c.Handler == nil {
		return c, errors.New("cluster: Config.Handler is required")
	}
	if c.BindAddr == "" {
		c.BindAddr = "127.0.0.1"
	}
	bind := net.ParseIP(c.BindAddr)
	if bind == nil {
		return c, fmt.Errorf("cluster: Config.BindAddr %q is not an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr == "" {
		if bind.IsUnspecified() {
			return c, fmt.Errorf("cluster: Config.BindAddr %s binds every interface; set Config.AdvertiseAddr to the IP peers should use", c.BindAddr)
		}
		c.AdvertiseAddr = c.BindAddr
	} else if ip := net.ParseIP(c.AdvertiseAddr); ip == nil || ip.IsUnspecified() {
		return c, fmt.Errorf("cluster: Config.AdvertiseAddr %q is not a usable IP address", c.AdvertiseAddr)
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"BindPort", c.BindPort}, {"AdvertisePort", c.AdvertisePort}, {"StreamPort", c.StreamPort}} {
		if p.v < 0 || p.v > 65535 {
			return c, fmt.Errorf("cluster: Config.%s %d out of range 0..65535", p.name, p.v)
		}
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		return c, fmt.Errorf("cluster: Config.Label is %d bytes, at most %d allowed", len(c.Label), memberlist.LabelMaxSize)
	}
	for i, k := range c.Keys {
		if len(k) != KeySize {
			return c, fmt.Errorf("cluster: Config.Keys[%d] is %d bytes, want %d (make one with: head -c32 /dev/urandom | base64)", i, len(k), KeySize)
		}
	}
	if len(c.Keys) == 0 && !bind.IsLoopback() && !c.Insecure {
		return c, fmt.Errorf("cluster: no Config.Keys for non-loopback BindAddr %s; "+
			"make a key with `head -c32 /dev/urandom | base64` and pass the decoded 32 bytes in Config.Keys, "+
			"or set Config.Insecure to run unencrypted", c.BindAddr)
	}
	if c.RejoinInterval < 0 || c.DialTimeout < 0 || c.MaxFrame < 0 {
		return c, errors.New("cluster: Config.RejoinInterval, DialTimeout and MaxFrame must not be negative")
	}
	defaults.Set(&c.RejoinInterval, DefaultRejoinInterval)
	defaults.Set(&c.DialTimeout, DefaultDialTimeout)
	defaults.Set(&c.MaxFrame, DefaultMaxFrame)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Seeds = append([]string(nil), c.Seeds...)
	keys := make([][]byte, len(c.Keys))
	for i, k := range c.Keys {
		keys[i] = append([]byte(nil), k...)
	}
	c.Keys = keys
	return c, nil
}
