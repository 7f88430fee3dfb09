package peersession

import (
	"errors"
	"net/http"
)

// Errors callers may branch on with errors.Is.
var (
	// ErrClosed is returned by operations on a closed Store.
	ErrClosed = errors.New("peersession: store closed")
	// ErrTooLarge is returned when a session would exceed
	// Config.MaxSessionBytes, or a key name or one encoded value would
	// exceed what replication carries (the wire codec's DefaultLimits: 1,024
	// bytes, 1 MiB); the stored session is left as it was.
	ErrTooLarge = errors.New("peersession: session too large")
	// ErrTooManySessions is returned when a new session would exceed
	// Config.MaxSessions, or a change would take the node past
	// Config.MaxBytes; raise the limit or shorten IdleTimeout.
	ErrTooManySessions = errors.New("peersession: too many sessions")
	// ErrSessionEnded is returned by a commit to a session that another
	// request, node or DestroyPrincipal ended meanwhile; the changes are
	// dropped so that an ended session never comes back.
	ErrSessionEnded = errors.New("peersession: session ended meanwhile")
	// ErrNewSessionRefused is the commit error of a request whose new
	// session Config.AllowNew refused (answered 429 Too Many Requests).
	ErrNewSessionRefused = errors.New("peersession: new session refused by Config.AllowNew")
	// ErrTooManyLogins is returned by a commit that tags a session with a
	// principal already at Config.MaxSessionsPerPrincipal, under the
	// RefuseNew policy (answered 403 Forbidden): the user must log out
	// elsewhere first.
	ErrTooManyLogins = errors.New("peersession: too many sessions for this principal (Config.MaxSessionsPerPrincipal)")
	// ErrHeadersSent is returned by Session.RenewID and Session.Destroy
	// called after the handler wrote the response: the new or cleared
	// cookie can no longer reach the client.
	ErrHeadersSent = errors.New("peersession: response headers already sent")
	// ErrNotFound is returned by Store.Load for a token that names no
	// live session.
	ErrNotFound = errors.New("peersession: session not found")
	// ErrNotReplicated is returned by a Sync-mode commit whose change was not
	// acknowledged by ClusterConfig.MinAcks peers within SyncTimeout, or that
	// a peer refused (its store full, the session expired there, its clock a
	// minute or more behind this node's: the peer logs why, and its Stats
	// count them as Refused or, for the clock, Replication.Skewed). The change
	// is applied locally and keeps replicating.
	ErrNotReplicated = errors.New("peersession: change not acknowledged by enough peers in time")
	// ErrInvalidToken is returned by LoadOrCreate for a token that is not 43
	// characters of base64url encoding 32 bytes.
	ErrInvalidToken = errors.New("peersession: token must be 43 characters of base64url encoding 32 bytes")
	// ErrReadOnly is returned when saving a session obtained from Store.All.
	ErrReadOnly = errors.New("peersession: session from Store.All is a read-only snapshot; Load it by token to change it")
	// ErrUnsupportedValue is returned (wrapped) by Session.Set for a value
	// msgpack cannot store faithfully: a struct none of whose fields would be
	// stored (all unexported or tagged "-"), a func, channel, unsafe.Pointer,
	// uintptr or complex number, anywhere in the value. Nothing is stored.
	ErrUnsupportedValue = errors.New("peersession: value cannot be stored faithfully")
	// ErrClockSkew is returned by every write through a clustered node
	// whose wall clock differs by more than a minute from a strict
	// majority of its peers' (from its only peer's, in a pair): its peers
	// would refuse its changes, or it theirs (docs/guarantees.md, "Clocks").
	// Nothing is stored. The error says by how much; fix the node's time
	// sync (NTP), and it takes writes again once its clock agrees. Reads
	// keep working.
	ErrClockSkew = errors.New("peersession: this node's clock is too far from its peers' to take writes")
	// ErrStale is returned by Session.RenewID on a node whose copy of the
	// session is older than a write the client has already seen (its
	// cookie's version stamp), when no peer holding the newer copy
	// answered the node's fetch in time (a partition, Async mode):
	// renewing the old copy would end the newer one and lose those
	// writes. Nothing is changed; retry, on this node once it has caught
	// up or on another.
	//
	// In partitioned mode (ClusterConfig.Copies) it is also the error of a
	// read that could not learn whether its session exists (the session's
	// holders did not answer within FetchTimeout, or the node's fetches
	// were all taken for that long): Session.Get, Store.Load and
	// LoadOrCreate return it, and a commit that would otherwise create a
	// new session over the client's cookie fails with it (503), so that
	// the client keeps its session.
	ErrStale = errors.New("peersession: this node's copy of the session is older than the client's last write")
)

// StatusCode is the HTTP status that answers a request failed by err, one
// of the errors above or wrapping one: the default Config.ErrorFunc uses
// it, and a handler can too. A client-caused condition is a 4xx, never a
// 5xx (which would page whoever is on call and invite a retry):
//
//	ErrTooLarge          413 Request Entity Too Large
//	ErrInvalidToken      400 Bad Request
//	ErrNotFound          404 Not Found
//	ErrSessionEnded      409 Conflict
//	ErrNewSessionRefused 429 Too Many Requests
//	ErrTooManyLogins     403 Forbidden
//	ErrTooManySessions   503 Service Unavailable (the node is full)
//	ErrNotReplicated     503 Service Unavailable (peers did not confirm in time)
//	ErrClosed            503 Service Unavailable (the node is shutting down)
//	ErrClockSkew         503 Service Unavailable (the node's clock is wrong)
//	ErrStale             503 Service Unavailable (the node lags; retry)
//	anything else        500 Internal Server Error
func StatusCode(err error) int {
	switch {
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalidToken):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrSessionEnded):
		return http.StatusConflict
	case errors.Is(err, ErrNewSessionRefused):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrTooManyLogins):
		return http.StatusForbidden
	case errors.Is(err, ErrTooManySessions), errors.Is(err, ErrNotReplicated), errors.Is(err, ErrClosed),
		errors.Is(err, ErrClockSkew), errors.Is(err, ErrStale):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
