package cluster

import (
	"context"
	"log/slog"
	"net"
	"strings"
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
	// maxCopies bounds Config.Copies.
	maxCopies = 255
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
	// BindAddr. Binding 0.0.0.0 or :: without an AdvertiseAddr is an error
	// (after the missing Keys, if they are missing too).
	AdvertiseAddr string
	// AdvertisePort is the advertised gossip port; 0 means the bound one.
	AdvertisePort int
	// StreamPort is the replication stream listener port on BindAddr; 0
	// picks a free port. It is advertised in node metadata.
	StreamPort int
	// Seeds are gossip "host:port" addresses of nodes to join. A host
	// name may resolve to several addresses (a Kubernetes headless
	// Service names every pod): it is resolved again every
	// RejoinInterval, and the addresses that are not members yet are
	// joined, so islands merge and nodes that came back on new addresses
	// find each other.
	Seeds []string
	// LookupHost resolves a seed's host name; nil means
	// net.DefaultResolver.LookupHost. Tests set it.
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// RejoinInterval is how often Seeds are resolved and the addresses
	// that are not members joined (partition heal, restarts, new pods);
	// a node with no peer at all tries every second. Zero means 10s.
	RejoinInterval time.Duration
	// Formats is the range of wire-format versions of the frames this
	// node's Handler speaks; the stream handshake exchanges it, refuses a
	// peer whose range does not overlap (see FormatError), and keeps the
	// peer's for the Handler (PeerFormats). The zero value means {1, 1},
	// which is what nodes of releases before format ranges speak.
	Formats Formats
	// Copies is how many members hold each piece of the Handler's data
	// (peersession's ClusterConfig.Copies); 0 means every member holds
	// everything. It is carried in node metadata, and every member must
	// have the same: a node whose Copies differs from a member's is
	// refused at the join (ErrCopiesDiffer) and never taken for a peer.
	// A node of a release without the field counts as 0.
	Copies int
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
	// Logger receives cluster and memberlist logs; nil means
	// DefaultLogger(): slog.Default's handler, warnings and errors only.
	Logger *slog.Logger
	// Handler receives membership events and frames; required.
	Handler Handler
	// Clock is this node's wall clock, whose reading it sends in its
	// ping acks so that peers measure the offset between their clocks
	// (see Node.ClockOffsets); nil means time.Now.
	Clock func() time.Time
	// Tune, if set, is applied last to the memberlist configuration (tests
	// shorten probe, suspicion and gossip timers with it).
	Tune func(*memberlist.Config)
	// DialTimeout bounds dialing a peer's stream plus its handshake, and
	// the handshake of an incoming stream; zero means 2s.
	DialTimeout time.Duration
	// MaxFrame is the largest frame Send accepts and a reader reassembles;
	// zero means 16 MiB.
	MaxFrame int
	// Limits bound what a client without the key can make the node hold
	// on its gossip and stream ports; zero fields take the defaults (see
	// Limits).
	Limits Limits

	// Network hooks, for tests that inject faults (internal/faultnet); nil
	// means the plain network. They see every byte the node sends, so
	// never set them from untrusted input.

	// WrapTransport, if set, wraps memberlist's transport: New builds
	// memberlist's usual NetTransport on BindAddr and BindPort (or takes
	// the one Tune set) and hands memberlist what WrapTransport returns,
	// behind the gossip port's Limits.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
	// Dial, if set, opens replication stream connections in place of a
	// net.Dialer; it must honour ctx (its deadline bounds the dial).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// WrapListener, if set, wraps the replication stream listener; the
	// wrapper's Addr must be the listener's own.
	WrapListener func(net.Listener) net.Listener
}

// withDefaults validates c and returns a copy with defaults filled in. An
// error is a *ConfigError naming the first field to fix.
func (c Config) withDefaults() (Config, error) {
	var err error
	if c.Name == "" {
		return c, configErr("Name", "{Name} is required: give each node a unique, stable name")
	}
	if len(c.Name) > maxNameLen {
		return c, configErr("Name", "{Name} is %d bytes, at most %d allowed", len(c.Name), maxNameLen)
	}
	if strings.IndexByte(c.Name, 0) >= 0 {
		return c, configErr("Name", "{Name} %q contains a NUL byte: give the node a printable name", c.Name)
	}
	if c.Copies < 0 || c.Copies == 1 || c.Copies > maxCopies {
		return c, configErr("Copies", "{Copies} %d is out of range: 0 means every member holds everything, otherwise 2 to %d", c.Copies, maxCopies)
	}
	if c.Formats == (Formats{}) {
		c.Formats = legacyFormats
	}
	if !c.Formats.valid() {
		return c, configErr("Formats", "{Formats} %s is not a range of versions from 1 up: set Min to the oldest and Max to the newest format the Handler reads", c.Formats)
	}
	if c.Handler == nil {
		return c, configErr("Handler", "{Handler} is required")
	}
	if c.BindAddr == "" {
		c.BindAddr = "127.0.0.1"
	}
	bind := net.ParseIP(c.BindAddr)
	if bind == nil {
		return c, configErr("BindAddr", "{BindAddr} %q is not an IP address", c.BindAddr)
	}
	for i, k := range c.Keys {
		if len(k) != KeySize {
			return c, configErr("Keys", "{Keys}[%d] is %d bytes, want %d: a key is 32 random bytes, "+
				"such as `openssl rand -base64 32` prints, decoded", i, len(k), KeySize)
		}
	}
	// The key before the address: binding 0.0.0.0 without one is first of
	// all a node open to anyone.
	if len(c.Keys) == 0 && !bind.IsLoopback() && !c.Insecure {
		return c, configErr("Keys", "{Keys} is empty and {BindAddr} %s is not loopback: "+
			"anyone who can reach the ports could read and forge what the nodes exchange. "+
			"Give every node the same 32-byte key (make one with `openssl rand -base64 32`), "+
			"or set {Insecure} to run unencrypted", c.BindAddr)
	}
	if c.AdvertiseAddr == "" {
		if bind.IsUnspecified() {
			return c, configErr("AdvertiseAddr", "{BindAddr} %s binds every interface; set {AdvertiseAddr} to the IP peers should use", c.BindAddr)
		}
		c.AdvertiseAddr = c.BindAddr
	} else if ip := net.ParseIP(c.AdvertiseAddr); ip == nil || ip.IsUnspecified() {
		return c, configErr("AdvertiseAddr", "{AdvertiseAddr} %q is not a usable IP address", c.AdvertiseAddr)
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"BindPort", c.BindPort}, {"AdvertisePort", c.AdvertisePort}, {"StreamPort", c.StreamPort}} {
		if p.v < 0 || p.v > 65535 {
			return c, configErr(p.name, "{"+p.name+"} %d out of range 0..65535", p.v)
		}
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		return c, configErr("Label", "{Label} is %d bytes, at most %d allowed", len(c.Label), memberlist.LabelMaxSize)
	}
	for _, d := range []struct {
		name string
		v    int64
	}{{"RejoinInterval", int64(c.RejoinInterval)}, {"DialTimeout", int64(c.DialTimeout)}, {"MaxFrame", int64(c.MaxFrame)}} {
		if d.v < 0 {
			return c, configErr(d.name, "{"+d.name+"} must not be negative")
		}
	}
	defaults.Set(&c.RejoinInterval, DefaultRejoinInterval)
	defaults.Set(&c.DialTimeout, DefaultDialTimeout)
	defaults.Set(&c.MaxFrame, DefaultMaxFrame)
	if c.Limits, err = c.Limits.withDefaults(); err != nil {
		return c, err
	}
	if c.Logger == nil {
		c.Logger = DefaultLogger()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
	c.Seeds = append([]string(nil), c.Seeds...)
	keys := make([][]byte, len(c.Keys))
	for i, k := range c.Keys {
		keys[i] = append([]byte(nil), k...)
	}
	c.Keys = keys
	return c, nil
}
