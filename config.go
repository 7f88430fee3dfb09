package peersession

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peersession/peersession/cluster"
	"github.com/peersession/peersession/internal/defaults"
	"github.com/peersession/peersession/replicate/wire"
)

// Config configures a Store. The zero Config is a working single-node store
// with the defaults documented on each field.
type Config struct {
	// IdleTimeout ends a session that has not been used for this long.
	// Zero means 30 minutes (Tomcat's session-timeout default).
	IdleTimeout time.Duration
	// Lifetime ends a session this long after it was created, however
	// active it is; RenewID does not extend it. Zero means 24 hours.
	Lifetime time.Duration
	// TouchInterval is how far a session's last-access time may lag
	// behind its real last use before a read records it. A request that
	// only reads a session costs no write at all unless its recorded
	// access is at least TouchInterval old; so a session expires between
	// IdleTimeout-TouchInterval and IdleTimeout after its last use. Zero
	// means IdleTimeout/10, capped at one minute.
	TouchInterval time.Duration

	// Cookie sets the session cookie's name and attributes.
	Cookie CookieConfig
	// Header, when set (for example "X-Session-Token"), also accepts the
	// session token in this request header and returns a new token in
	// the response header of the same name, for API clients that do not
	// keep cookies. Empty means cookies only.
	Header string

	// MaxSessionBytes caps one session's size: its keys' names and values,
	// and 64 bytes a key for what a key costs in memory besides (so the
	// default admits at most about 1,000 keys). A Set or commit that would
	// exceed it fails with ErrTooLarge and leaves the stored session as it
	// was. Zero means 64 KiB.
	MaxSessionBytes int
	// MaxSessions caps the sessions one node holds. At the cap, creating
	// a new session (not a RenewID, which replaces one) fails with
	// ErrTooManySessions (the middleware answers 503); existing sessions,
	// and so logged-in users, are never evicted to make room. Zero means
	// 1,000,000. See AllowNew for a limit per client. The cap is per node
	// in partitioned mode (ClusterConfig.Copies) too: a node counts the
	// sessions it holds copies of, and a write it takes on a session held
	// elsewhere is no creation (it works at the cap).
	MaxSessions int
	// MaxBytes caps the session data one node holds (Stats.Bytes: keys,
	// values and 64 bytes a key): a change that would grow it past the cap
	// fails with ErrTooManySessions (503), as MaxSessions does; shrinking
	// and ending sessions always work. Zero means 2 GiB.
	MaxBytes int64
	// MaxTombstones caps the tombstones one node holds: the marks a
	// destroyed or renewed session leaves so that no copy on a peer brings
	// it back (about 300 bytes each, kept up to the session's Lifetime).
	// Past it the oldest are dropped early, and the node then refuses a
	// session it does not hold whose last write is no later than the
	// last one those ended (it may be one of them); new and active
	// sessions are not affected. Stats.Tombstones and TombstonesDropped
	// count them. Zero means MaxSessions.
	MaxTombstones int

	// SweepInterval is how often expired sessions and old tombstones are
	// removed from memory. Expired sessions are invisible at once
	// whatever this is. Zero means one minute.
	SweepInterval time.Duration

	// OnCreate, OnDestroy and OnExpire, when set, are called after a
	// session is created, destroyed (Destroy, RenewID's old ID,
	// DestroyPrincipal) or found expired. See Events.
	OnCreate, OnDestroy, OnExpire func(Event)
	// NotifyOnReplication also calls the callbacks for changes that
	// arrived from peers (Tomcat's notifyListenersOnReplication). By
	// default only the node that made a change calls them, and OnExpire
	// is called by every node that sweeps the session.
	NotifyOnReplication bool

	// MaxSessionsPerPrincipal caps the live sessions of one principal (a
	// user, tagged with Session.SetPrincipal) across the cluster; zero
	// means no cap. LoginPolicy says what a login past it does: end the
	// user's oldest sessions (EndOldest, the default) or refuse the new
	// login with ErrTooManyLogins (RefuseNew). Simultaneous logins on
	// several nodes settle, once replicated, on the same survivors
	// everywhere (see principal_limit.go).
	MaxSessionsPerPrincipal int
	LoginPolicy             LoginPolicy

	// AllowNew, when set, is asked before the middleware creates a session
	// for a request; false refuses it with ErrNewSessionRefused (answered
	// 429 Too Many Requests). It is where an app limits new sessions per
	// client, by address say: MaxSessions is a node-wide cap, and a flood
	// of logins from one client would otherwise fill it. It runs with the
	// session locked: it must not use the request's session.
	AllowNew func(r *http.Request) bool

	// ErrorFunc answers a request whose session could not be saved (too
	// large, store full, Sync timeout) while the response can still be
	// changed. Nil means a plain status from StatusCode (413 for ErrTooLarge,
	// 503 for ErrTooManySessions) without detail. After the headers went out,
	// errors are only logged.
	ErrorFunc func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives the store's logs. Nil means slog.Default() (as it is
	// when New is called), warnings and errors only, so that a misconfigured
	// or failing cluster is never silent; slog.New(slog.DiscardHandler)
	// logs nothing.
	Logger *slog.Logger

	// Now is the wall clock; nil means time.Now. An app's own tests set a
	// fake clock here to test what its sessions do as time passes, with
	// Store.Sweep to fire OnExpire without waiting.
	Now func() time.Time

	// Cluster, when set, joins a cluster and replicates every change to
	// its live members. Nil means a single node.
	Cluster *ClusterConfig

	// DataDir, when set, keeps the sessions on disk in this directory
	// (created 0700 if missing; one Store per directory), so that they
	// survive a restart, a crash included: New loads them before joining
	// the cluster, a background writer saves every change, and Close
	// saves the rest. Empty means memory only: sessions that no peer holds
	// are lost when the node stops. See docs/persistence.md.
	DataDir string
	// DataKey is the 32-byte key that DataDir's files are encrypted with
	// (AES-256-GCM). Nil means the cluster key (ClusterConfig.Keys, all of
	// which are tried when reading); a single node, or a cluster without
	// Keys, must set it. Keep it outside DataDir; make one with GenerateKey
	// or `openssl rand -base64 32` and read it with ParseKey or
	// ReadKeyFile.
	DataKey []byte
	// FlushInterval is how often changes are written to DataDir and synced:
	// a crash loses at most the changes of the last FlushInterval (Close
	// loses none). Zero means one second.
	FlushInterval time.Duration
}

// CookieConfig sets the session cookie. The zero value gives a safe
// cookie: HttpOnly, SameSite=Lax, Path=/, Secure when the request came over
// TLS (directly or through a proxy that says so: see NeedsSecure), and a
// browser-session cookie.
type CookieConfig struct {
	// Name is the cookie name; empty means "session".
	Name string
	// Domain is the cookie's Domain attribute; empty means host-only.
	Domain string
	// Path is the cookie's Path attribute; empty means "/".
	Path string
	// Secure forces the Secure attribute. Without it, Secure is set when
	// NeedsSecure says so: the request arrived over TLS (or a proxy's
	// X-Forwarded-Proto or Forwarded header says it did), a __Host- or
	// __Secure- name, or SameSite=None.
	Secure bool
	// AllowScript drops the HttpOnly attribute, letting page scripts read
	// the cookie. Off by default, as it should stay.
	AllowScript bool
	// SameSite is the cookie's SameSite attribute; zero means Lax.
	SameSite http.SameSite
	// Persist makes the cookie outlive the browser session: it gets an
	// Expires equal to the session's absolute deadline. By default the
	// cookie ends when the browser closes.
	Persist bool
}

const (
	defaultIdleTimeout     = 30 * time.Minute
	defaultLifetime        = 24 * time.Hour
	defaultMaxSessionBytes = 64 << 10
	defaultMaxSessions     = 1_000_000
	defaultMaxBytes        = 2 << 30
	defaultSweepInterval   = time.Minute
	defaultFlushInterval   = time.Second
	defaultCookieName      = "session"
)

// withDefaults returns c with every zero field set to its default, or an
// error naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	defaults.Set(&c.IdleTimeout, defaultIdleTimeout)
	defaults.Set(&c.Lifetime, defaultLifetime)
	if c.TouchInterval == 0 {
		c.TouchInterval = min(c.IdleTimeout/10, time.Minute)
	}
	defaults.Set(&c.MaxSessionBytes, defaultMaxSessionBytes)
	defaults.Set(&c.MaxSessions, defaultMaxSessions)
	defaults.Set(&c.MaxTombstones, c.MaxSessions)
	defaults.Set(&c.MaxBytes, defaultMaxBytes)
	defaults.Set(&c.SweepInterval, defaultSweepInterval)
	defaults.Set(&c.FlushInterval, defaultFlushInterval)
	defaults.Set(&c.Cookie.Name, defaultCookieName)
	defaults.Set(&c.Cookie.Path, "/")
	defaults.Set(&c.Cookie.SameSite, http.SameSiteLaxMode)
	if c.Logger == nil {
		c.Logger = cluster.DefaultLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.IdleTimeout < 0:
		return c, fmt.Errorf("peersession: Config.IdleTimeout is %v; use a positive duration, or zero for 30m", c.IdleTimeout)
	case c.Lifetime < 0:
		return c, fmt.Errorf("peersession: Config.Lifetime is %v; use a positive duration, or zero for 24h", c.Lifetime)
	case c.TouchInterval < 0 || c.TouchInterval >= c.IdleTimeout:
		return c, fmt.Errorf("peersession: Config.TouchInterval is %v; it must be positive and below IdleTimeout (%v)", c.TouchInterval, c.IdleTimeout)
	case c.MaxSessionBytes < 0:
		return c, fmt.Errorf("peersession: Config.MaxSessionBytes is %d; use a positive size, or zero for 64 KiB", c.MaxSessionBytes)
	case c.MaxSessions < 0:
		return c, fmt.Errorf("peersession: Config.MaxSessions is %d; use a positive count, or zero for 1,000,000", c.MaxSessions)
	case c.MaxSessionsPerPrincipal < 0:
		return c, fmt.Errorf("peersession: Config.MaxSessionsPerPrincipal is %d; use a positive count, or zero for no cap", c.MaxSessionsPerPrincipal)
	case c.MaxSessionsPerPrincipal > 0 && c.Cluster != nil && c.Cluster.Copies > 1:
		return c, fmt.Errorf("peersession: Config.MaxSessionsPerPrincipal is not supported with ClusterConfig.Copies (partitioned mode): " +
			"each node sees only the sessions it holds, so the cap would not hold cluster-wide; set one of them to zero")
	case c.LoginPolicy != EndOldest && c.LoginPolicy != RefuseNew:
		return c, fmt.Errorf("peersession: Config.LoginPolicy is %d; use EndOldest or RefuseNew", c.LoginPolicy)
	case c.MaxBytes < 0:
		return c, fmt.Errorf("peersession: Config.MaxBytes is %d; use a positive size, or zero for 2 GiB", c.MaxBytes)
	case c.MaxTombstones < 0:
		return c, fmt.Errorf("peersession: Config.MaxTombstones is %d; use a positive count, or zero for MaxSessions", c.MaxTombstones)
	case c.SweepInterval < 0:
		return c, fmt.Errorf("peersession: Config.SweepInterval is %v; use a positive duration, or zero for 1m", c.SweepInterval)
	case c.FlushInterval < 0:
		return c, fmt.Errorf("peersession: Config.FlushInterval is %v; use a positive duration, or zero for 1s", c.FlushInterval)
	case c.DataKey != nil && len(c.DataKey) != KeySize:
		return c, fmt.Errorf("peersession: Config.DataKey has %d bytes; it must have %d: %s", len(c.DataKey), KeySize, makeKey)
	case c.DataDir != "" && c.DataKey == nil && (c.Cluster == nil || len(c.Cluster.Keys) == 0):
		return c, fmt.Errorf("peersession: Config.DataDir is set but there is no key to encrypt it with: set Config.DataKey (32 bytes, kept outside the directory; %s), or ClusterConfig.Keys", makeKey)
	case !validCookieName(c.Cookie.Name):
		return c, fmt.Errorf("peersession: Config.Cookie.Name %q is not a valid cookie name", c.Cookie.Name)
	case strings.HasPrefix(c.Cookie.Name, "__Host-") && (c.Cookie.Domain != "" || c.Cookie.Path != "/"):
		return c, fmt.Errorf("peersession: Config.Cookie.Name %q has the __Host- prefix, which browsers accept only with Path \"/\" and no Domain; clear Config.Cookie.Domain and Path", c.Cookie.Name)
	}
	if c.Cluster != nil {
		if err := c.Cluster.checkRouteCookie(c.Cookie); err != nil {
			return c, err
		}
	}
	return c, nil
}

func validCookieName(name string) bool {
	c := http.Cookie{Name: name, Value: "x"}
	return c.Valid() == nil
}

// Consistency says when a write counts as done in a cluster.
type Consistency int

const (
	// Async (the default) returns once the change is applied locally;
	// peers get it within the replication lag, typically well under a
	// millisecond. A node that dies can take its last unreplicated
	// changes with it.
	Async Consistency = iota
	// Sync returns only once ClusterConfig.MinAcks peers have applied the
	// change, so a single node can die without losing an acknowledged
	// write.
	Sync
)

// AllPeers as ClusterConfig.MinAcks waits, in Sync mode, for every peer
// that was live when the write was made.
const AllPeers = -1

// ClusterConfig joins a Store to a cluster. Every field but Name has a
// default; Keys is required unless every address is loopback or Insecure
// is set.
type ClusterConfig struct {
	// Name is this node's name, unique in the cluster and stable across
	// restarts. Required. A node whose Name a live member already has is
	// refused: its WaitReady returns an error naming that member.
	Name string
	// BindAddr is the IP address to listen on for gossip and replication;
	// empty means 127.0.0.1. Binding a non-loopback address requires Keys
	// (or Insecure).
	BindAddr string
	// BindPort is the gossip port (TCP and UDP); zero picks a free port.
	// When it is taken, New fails with an error that errors.Is matches to
	// syscall.EADDRINUSE.
	BindPort int
	// AdvertiseAddr and AdvertisePort are what peers dial; empty and zero
	// mean BindAddr and the bound port. Set them behind NAT.
	AdvertiseAddr string
	AdvertisePort int
	// StreamPort is the replication stream port on BindAddr; zero picks a
	// free port (it is advertised to peers in gossip).
	StreamPort int
	// Join lists gossip addresses ("host:port") of nodes to join. A host
	// name may name several nodes (a Kubernetes headless Service): it is
	// resolved again every RejoinInterval and the addresses that are not
	// members yet are joined, so islands merge and nodes that all
	// restarted on new addresses find each other. A node keeps retrying,
	// so members may start in any order and a partitioned node finds its
	// way back: a node none of whose seeds
	// answer becomes ready alone. One whose seeds answer but refuse it
	// (Keys or Label differ, Name taken) gets an error from WaitReady.
	Join []string
	// RejoinInterval is how often Join is retried; zero means 10s.
	RejoinInterval time.Duration
	// Label separates clusters sharing a network; nodes with another
	// label ignore each other, and a node whose seeds have another label
	// gets an error from WaitReady.
	Label string
	// Keys is the cluster keyring: 32-byte keys, the first one primary
	// (used to send); the others are still accepted, for rotation. Keys
	// encrypt gossip (AES-256-GCM) and secure the replication streams
	// (Noise NNpsk0). Every node needs the same key: a node whose seeds
	// cannot authenticate it gets an error from WaitReady. Make one with
	// `openssl rand -base64 32` and read it with ParseKey or ReadKeyFile,
	// or call GenerateKey.
	Keys [][]byte
	// Insecure allows a non-loopback BindAddr without Keys. Never in
	// production: anyone who can reach the port can read and forge
	// sessions.
	Insecure bool

	// Copies is how many nodes hold each session. Zero, the default,
	// means every node holds every session (full replication: reads are
	// always local; fit for a handful of nodes). Two or more partitions
	// the sessions (for larger clusters): each is held by Copies nodes,
	// picked by rendezvous hashing of its ID over the live members' Names,
	// and any node serves any session, a node that does not hold it with
	// one bounded fetch from those that do (see docs/design.md,
	// "Partitioned mode"). 1 is an error: a dead node would lose its
	// sessions. Every node must have the same Copies: a node whose seeds
	// have another gets an error from WaitReady.
	Copies int
	// RouteCookie, when set, names a second cookie that the middleware
	// keeps naming the node a route-aware balancer should send the
	// session's requests to (WildFly's affinity): its owner in partitioned
	// mode (Store.Holders' first), so that no read costs a fetch; in full
	// replication the node that served the request, as sticky sessions
	// do. Its value is that node's Name, so name each node as the
	// balancer names its server. It has the session cookie's Path,
	// Domain, Secure, HttpOnly and SameSite, lasts until the browser
	// closes, and is set again whenever a request arrives without it or
	// with another route (after a rebalance, a RenewID). It grants
	// nothing: a client that changes it only lands on another node,
	// which serves it all the same. Store.Middleware sets it; outside
	// it, Store.Holders(token)[0] is the same route. Empty means no
	// route cookie. See docs/design.md, "Route-aware balancing".
	RouteCookie string

	// Consistency is Async (the default) or Sync.
	Consistency Consistency
	// MinAcks is, in Sync mode, how many peers must have applied a change
	// before the write returns; zero means 1, AllPeers means every live
	// peer. In partitioned mode (Copies) only the session's live holders
	// other than the writer can acknowledge: MinAcks is capped at their
	// number (Copies−1 on a holder), and AllPeers means all of them; when
	// they have not acknowledged within half of SyncTimeout (one frozen,
	// say), other nodes stand in for them (see docs/design.md).
	MinAcks int
	// SyncTimeout bounds the wait for acknowledgements in Sync mode; zero
	// means one second. On timeout the change stays applied locally and
	// keeps replicating, and the commit fails with ErrNotReplicated
	// (the middleware answers 500) unless AcceptOnTimeout is set, which
	// logs and counts instead.
	SyncTimeout     time.Duration
	AcceptOnTimeout bool
	// FetchTimeout bounds the wait when a request presents a session that
	// this node lacks or holds at an older version than the client has
	// seen, and the node asks its peers; zero means 100ms.
	FetchTimeout time.Duration
	// AntiEntropyInterval is how often a node compares digests with a
	// random peer and repairs differences; zero means 30s, negative turns
	// it off.
	AntiEntropyInterval time.Duration

	// Memberlist, when set, adjusts the memberlist configuration after
	// peersession has set it up (tests shorten failure detection).
	Memberlist func(*memberlist.Config)
}

// withDefaults returns c with every zero field that has a default set to
// it, or an error naming the field to fix.
func (c ClusterConfig) withDefaults() (ClusterConfig, error) {
	if c.Name == "" {
		return c, fmt.Errorf("peersession: ClusterConfig.Name is empty; give each node a unique, stable name")
	}
	switch {
	case c.Copies == 1:
		return c, fmt.Errorf("peersession: ClusterConfig.Copies is 1: a session on one node is lost when that node dies; set 2 or more (each session on that many nodes) or 0 (every node holds every session)")
	case c.Copies < 0 || c.Copies > maxCopies:
		return c, fmt.Errorf("peersession: ClusterConfig.Copies %d is out of range; set 0 (every node holds every session) or 2 to %d", c.Copies, maxCopies)
	}
	defaults.Set(&c.MinAcks, 1)
	defaults.Set(&c.SyncTimeout, time.Second)
	defaults.Set(&c.FetchTimeout, 100*time.Millisecond)
	return c, nil
}

// maxCopies bounds ClusterConfig.Copies: what node metadata carries.
const maxCopies = 255

// clusterField names a cluster.Config field as ClusterConfig does.
func clusterField(f string) string {
	switch f {
	case "Seeds":
		f = "Join"
	case "Tune":
		f = "Memberlist"
	}
	return "ClusterConfig." + f
}

// clusterError rewords an error of cluster/ about the node's configuration
// (a *cluster.ConfigError from New, a *cluster.JoinError from Join) in
// ClusterConfig's field names, or returns nil for any other error.
func clusterError(err error) error {
	var m interface {
		Message(name func(string) string) string
	}
	if !errors.As(err, &m) {
		return nil
	}
	msg := "peersession: " + m.Message(clusterField)
	if ce := (*cluster.ConfigError)(nil); errors.As(err, &ce) && ce.Field == "Keys" {
		msg += "; in Go, GenerateKey makes a key and ParseKey reads one from text"
	}
	return &rewordedError{msg, err}
}

// rewordedError is an error of cluster/ in peersession's words; errors.Is
// and errors.As see the original (cluster.ErrKeysDiffer, say).
type rewordedError struct {
	msg string
	err error
}

func (e *rewordedError) Error() string { return e.msg }

func (e *rewordedError) Unwrap() error { return e.err }

// clusterConfig is the configuration of c's cluster node: the network
// fields are cluster.Config's (their defaults are set there), under the
// names a user of peersession knows them by (Join is cluster's Seeds).
func (c *ClusterConfig) clusterConfig(log *slog.Logger, h cluster.Handler) cluster.Config {
	return cluster.Config{
		Name: c.Name, BindAddr: c.BindAddr, BindPort: c.BindPort,
		AdvertiseAddr: c.AdvertiseAddr, AdvertisePort: c.AdvertisePort, StreamPort: c.StreamPort,
		Seeds: c.Join, RejoinInterval: c.RejoinInterval, Label: c.Label,
		Keys: c.Keys, Insecure: c.Insecure, Tune: c.Memberlist, Copies: c.Copies,
		Logger: log, Handler: h,
		// The range of wire formats the engine speaks, announced in every
		// stream handshake (see wire.FormatNewest).
		Formats: c.formats(),
	}
}

// formats is the range of wire formats the engine speaks: from
// wire.FormatPartitioned in partitioned mode, whose DestroyPrincipal needs
// it of every peer.
func (c *ClusterConfig) formats() cluster.Formats {
	if c.Copies > 0 {
		return cluster.Formats{Min: uint8(wire.FormatPartitioned), Max: uint8(wire.FormatNewest)}
	}
	return cluster.Formats{Min: uint8(wire.FormatOldest), Max: uint8(wire.FormatNewest)}
}
