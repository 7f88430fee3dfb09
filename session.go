package peersession

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/peersession/peersession/replicate/model"
	"github.com/peersession/peersession/replicate/wire"
)

// Session is one request's view of a session: the stored snapshot it
// loaded plus the changes the request made, which are saved together at the
// commit point (see Store.Middleware) or by Store.Save.
//
// A Session is safe for concurrent use by the goroutines of one request.
// Two requests on the same session each have their own Session; their
// changes merge key by key, the later write of the same key winning.
type Session struct {
	st *Store

	mu    sync.Mutex // guards every field below
	token string     // the client's token; "" until the session exists
	// id is idOf(token), kept so that a commit need not hash again: set
	// with token once the session is loaded or created, "" with it.
	id    string
	stamp int64  // version stamp the client presented (read-your-writes)
	base  *entry // the snapshot loaded; nil for a new session
	// dirty holds this request's changes, sorted by key without repeats
	// (as model.Record.Keys), their versions unset until the commit,
	// which hands the slice over to the delta it stores and replicates.
	dirty     []model.KeyValue
	size      int     // base.size adjusted for dirty, for the early size check
	principal *string // a SetPrincipal not yet committed
	loaded    bool    // load has run
	// loadErr is why the load found no session when it could not tell
	// whether there is one (partitioned mode, the holders silent): Get
	// returns it, and a commit that would create a session fails with it,
	// so that the client keeps its cookie (see errHoldersSilent).
	loadErr    error
	touch      bool // record the access time at commit
	destroy    bool
	renew      bool
	ended      *entry          // Destroy: the snapshot of the session it ends
	ctx        context.Context // the request context, for peer fetches; nil means Background
	chosen     string          // LoadOrCreate: the token a new session is created under
	snapshotID string          // Store.All: the ID of a read-only snapshot
	// sent is set by the middleware once the response headers went out:
	// a new cookie can no longer reach the client.
	sent bool
	// expiry is a SetExpiry not yet committed (Unix nanoseconds); zero
	// for none.
	expiry int64
}

// newSession returns a Session for a request that presented token (maybe
// empty or invalid) with version stamp; it loads lazily.
func (st *Store) newSession(token string, stamp int64) *Session {
	if !validToken(token) {
		token, stamp = "", 0
	}
	return &Session{st: st, token: token, stamp: stamp}
}

// loadLocked loads the stored snapshot on first use. s.mu must be held.
func (s *Session) loadLocked(ctx context.Context) {
	if s.loaded {
		return
	}
	s.loaded = true
	if s.token == "" {
		return
	}
	e, now, err := s.st.find(ctx, s.token, s.stamp)
	if e == nil {
		s.token = "" // unknown or expired: never adopt the client's ID
		s.loadErr = err
		return
	}
	s.id = e.rec.ID // the map's key, equal to idOf(s.token), without hashing again
	s.base, s.size = e, e.size
	if now.UnixNano()-e.rec.Access >= int64(s.st.cfg.TouchInterval) {
		s.touch = true
	}
}

func (s *Session) context() context.Context {
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// Get decodes the value stored under key into dst, a pointer, and reports
// whether the key was present. A missing key is found=false, err=nil; err
// reports a value that does not decode into dst, among them an integer
// that does not fit it (300 into an int8, -1 into a uint), which leaves
// dst as it was. Into an interface (an any, the elements of a []any or
// map[string]any) a value comes back as int64 (uint64 above
// math.MaxInt64), float64, string, []byte, bool, nil, time.Time, []any
// or map[string]any: a struct as map[string]any. See docs/values.md. In
// partitioned mode, a missing key of a session that could not be fetched
// from its holders is err wrapping ErrStale (see ErrStale).
func (s *Session) Get(key string, dst any) (found bool, err error) {
	if s.st.closed.Load() {
		return false, ErrClosed
	}
	data, ok, err := s.rawErr(key)
	if !ok {
		return false, err
	}
	if err := decodeValue(data, dst); err != nil {
		return true, fmt.Errorf("peersession: decode key %q into %T: %w", key, dst, err)
	}
	return true, nil
}

// rawErr is raw, with the load's error (Session.loadErr) when the key is
// missing.
func (s *Session) rawErr(key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(s.context())
	data, ok := s.currentLocked(key)
	if !ok && s.base == nil {
		return nil, false, s.loadErr
	}
	return data, ok, nil
}

// raw returns key's encoded value, from this request's changes or the
// loaded snapshot.
func (s *Session) raw(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(s.context())
	return s.currentLocked(key)
}

// Has reports whether key is set.
func (s *Session) Has(key string) bool {
	_, ok := s.raw(key)
	return ok
}

// Set stores v under key. v is encoded with msgpack now, so changing v
// afterwards changes nothing stored. It fails with ErrTooLarge, storing
// nothing, if the session would exceed Config.MaxSessionBytes, or if the
// key name is over 1,024 bytes or the encoded value over 1 MiB (what
// replication carries, whatever MaxSessionBytes says). It fails with
// ErrUnsupportedValue, storing nothing, for a value that could not come
// back as it went in: a struct none of whose fields is exported (as
// encoding/gob), a func, channel, unsafe.Pointer, uintptr or complex
// number, anywhere in v. As with encoding/json and gob, the unexported
// fields of a struct that has exported ones are not stored.
func (s *Session) Set(key string, v any) error {
	if s.st.closed.Load() {
		return ErrClosed
	}
	data, err := encodeValue(v)
	if err != nil {
		return fmt.Errorf("peersession: encode key %q (%T): %w", key, v, err)
	}
	return s.put(key, model.Value{Data: data})
}

// Delete removes key. Removing a missing key is not an error.
func (s *Session) Delete(key string) {
	_ = s.put(key, model.Value{Deleted: true})
}

func (s *Session) put(key string, v model.Value) error {
	// What one key may hold is bounded by what a peer accepts: a key or
	// value past these could be stored here but never replicated.
	if lim := wire.DefaultLimits.MaxKeyLen; len(key) > lim {
		return fmt.Errorf("%w: a key name of %d bytes, over the %d-byte limit; use a shorter name", ErrTooLarge, len(key), lim)
	}
	if lim := wire.DefaultLimits.MaxValue; len(v.Data) > lim {
		return fmt.Errorf("%w: the value for %q is %d bytes encoded, over the %d-byte limit for one value (replication carries no larger); split it over several keys", ErrTooLarge, key, len(v.Data), lim)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(s.context())
	old, had := s.currentLocked(key)
	size := s.size + len(v.Data) - len(old)
	if !had && !v.Deleted {
		size += len(key) + keyOverhead
	}
	if had && v.Deleted {
		size -= len(key) + keyOverhead
	}
	if size > s.st.cfg.MaxSessionBytes && size > s.size {
		return fmt.Errorf("%w: setting %q would make it %d bytes, over Config.MaxSessionBytes (%d)", ErrTooLarge, key, size, s.st.cfg.MaxSessionBytes)
	}
	if !had && v.Deleted && s.base == nil {
		return nil // nothing to remove from a session that does not exist
	}
	if i, ok := model.SearchKeys(s.dirty, key); ok {
		s.dirty[i].Value = v
	} else {
		s.dirty = slices.Insert(s.dirty, i, model.KeyValue{Key: key, Value: v})
	}
	s.size = size
	return nil
}

// dirtyLocked returns this request's change to key, if any.
func (s *Session) dirtyLocked(key string) (model.Value, bool) {
	if i, ok := model.SearchKeys(s.dirty, key); ok {
		return s.dirty[i].Value, true
	}
	return model.Value{}, false
}

// currentLocked returns key's current encoded value.
func (s *Session) currentLocked(key string) ([]byte, bool) {
	if v, ok := s.dirtyLocked(key); ok {
		return v.Data, !v.Deleted
	}
	if s.base != nil {
		if v, ok := s.base.rec.Get(key); ok && !v.Deleted {
			return v.Data, true
		}
	}
	return nil, false
}

// Keys returns the session's keys, sorted.
func (s *Session) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(s.context())
	var keys []string
	if s.base != nil {
		for _, kv := range s.base.rec.Keys {
			if d, ok := s.dirtyLocked(kv.Key); (ok && !d.Deleted) || (!ok && !kv.Value.Deleted) {
				keys = append(keys, kv.Key)
			}
		}
	}
	for _, kv := range s.dirty {
		if _, inBase := s.base.keysHas(kv.Key); !inBase && !kv.Value.Deleted {
			keys = append(keys, kv.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

func (e *entry) keysHas(k string) (model.Value, bool) {
	if e == nil {
		return model.Value{}, false
	}
	return e.rec.Get(k)
}

// SetExpiry makes the session last at least until t, whatever the Store's
// IdleTimeout, from the commit on: for adapters whose framework keeps an
// expiry of its own and passes it with every save (scs's Commit, gorilla's
// MaxAge), so that peersession never ends a session the framework still
// holds. Each SetExpiry extends the session's idle timeout to cover t,
// and a session created with it has no absolute deadline of its own (the
// framework keeps that; an existing session keeps the deadline it was
// created with). The framework ends the session at its own expiry; the
// store forgets it once t passes without a renewal.
func (s *Session) SetExpiry(t time.Time) error {
	if s.st.closed.Load() {
		return ErrClosed
	}
	if t.IsZero() {
		return fmt.Errorf("peersession: SetExpiry needs a time; a zero time sets nothing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(s.context())
	s.expiry = t.UnixNano()
	return nil
}

// SetPrincipal tags the session with a user, for Store.PrincipalSessions
// and Store.DestroyPrincipal. An empty p removes the tag.
func (s *Session) SetPrincipal(p string) error {
	if s.st.closed.Load() {
		return ErrClosed
	}
	if len(p) > maxPrincipalLen {
		return fmt.Errorf("peersession: principal is %d bytes, over the %d-byte limit", len(p), maxPrincipalLen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(s.context())
	s.principal = &p
	return nil
}

const maxPrincipalLen = 512

// Principal returns the session's user tag, or "".
func (s *Session) Principal() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(s.context())
	switch {
	case s.principal != nil:
		return *s.principal
	case s.base != nil:
		return s.base.rec.Principal
	}
	return ""
}

// IsNew reports whether the session did not exist when the request came
// in (or was destroyed during it).
func (s *Session) IsNew() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(s.context())
	return s.base == nil
}

// ID returns the session's store ID: a hash of its token, safe to log and
// to compare with Store.PrincipalSessions. It is "" for a session not yet
// saved.
func (s *Session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadLocked(s.context())
	switch {
	case s.snapshotID != "":
		return s.snapshotID
	case s.token == "":
		return ""
	}
	return s.id
}

// Token returns the client token (the cookie value's secret part) once the
// session has been saved, for handing to API clients; "" before. Treat it
// as a password.
func (s *Session) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// RenewID gives the session a new ID at the commit point, keeping its data,
// and ends the old ID everywhere. Call it when the user logs in or out, so
// that an ID planted before the login is worthless (session fixation).
//
// It must be called before the handler writes the response: afterwards
// the new ID could not reach the client, whose next request would find no
// session, so RenewID changes nothing and returns ErrHeadersSent. On a
// closed Store it returns ErrClosed. On a node whose copy is older than a
// write the client has seen, when no peer sent the newer copy in time, it
// returns ErrStale and changes nothing.
func (s *Session) RenewID() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked("RenewID"); err != nil {
		return err
	}
	s.loadLocked(s.context())
	if s.staleLocked() {
		return fmt.Errorf("%w: RenewID would copy it to the new ID and end the old one everywhere, losing the writes it lacks; no peer holding them answered in time", ErrStale)
	}
	s.renew = true
	return nil
}

// staleLocked reports whether the loaded copy is older than the client's
// version stamp (within the bound find trusts a stamp to): the fetch of
// the newer copy found none in time.
func (s *Session) staleLocked() bool {
	if s.base == nil || s.stamp == 0 || s.st.repl == nil {
		return false
	}
	return s.stamp > s.base.stamp && s.stamp-s.st.cfg.Now().UnixNano() <= int64(maxStampAhead)
}

// Destroy ends the session at the commit point and expires its cookie.
// Setting a key afterwards (in the same request) starts a fresh, empty
// session with a new ID, and the old one still ends.
//
// Called after the handler wrote the response, Destroy still ends the
// session everywhere, but the cookie can no longer be cleared: it returns
// ErrHeadersSent so the handler knows. On a closed Store it returns
// ErrClosed and ends nothing.
func (s *Session) Destroy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.closed.Load() {
		return ErrClosed
	}
	s.loadLocked(s.context())
	if !s.destroy && s.base != nil {
		s.ended = s.base
	}
	s.destroy = true
	s.base, s.size, s.token, s.id = nil, 0, "", ""
	s.dirty, s.principal, s.renew, s.chosen = nil, nil, false, ""
	if s.sent {
		return fmt.Errorf("%w: Destroy ended the session, but its cookie cannot be cleared; call Destroy before writing the response", ErrHeadersSent)
	}
	return nil
}

// usableLocked returns the error for a change named op on this session
// that could not take effect: the Store is closed, or (for what needs a
// new cookie) the response headers went out. s.mu must be held.
func (s *Session) usableLocked(op string) error {
	if s.st.closed.Load() {
		return ErrClosed
	}
	if s.sent {
		return fmt.Errorf("%w: %s needs a new cookie, which can no longer reach the client; call it before writing the response", ErrHeadersSent, op)
	}
	return nil
}

// Changed reports whether the session has changes not yet committed.
func (s *Session) Changed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changedLocked()
}

func (s *Session) changedLocked() bool {
	return len(s.dirty) > 0 || s.principal != nil || s.destroy || s.renew || s.touch || s.expiry != 0
}
