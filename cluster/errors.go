package cluster

import (
	"errors"
	"strings"
	"syscall"
)

// Sentinel errors callers may branch on with errors.Is.
var (
	// ErrUnknownPeer is returned by Send when the peer ID is not a live member.
	ErrUnknownPeer = errors.New("cluster: unknown peer")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("cluster: node closed")
	// ErrFrameTooLarge is returned by Send for a frame over Config.MaxFrame.
	ErrFrameTooLarge = errors.New("cluster: frame too large")
)

// portInUse is an error from memberlist reporting a port already in use:
// memberlist formats the errors of its listeners with %v, which drops the
// errno, so it is added back for callers testing errors.Is(err,
// syscall.EADDRINUSE) (to pick another port, say).
type portInUse struct{ error }

func (e portInUse) Unwrap() []error { return []error{e.error, syscall.EADDRINUSE} }

// withErrno returns memberlist's err, wrapping syscall.EADDRINUSE when it
// reports a port in use.
func withErrno(err error) error {
	if err != nil && !errors.Is(err, syscall.EADDRINUSE) && strings.Contains(err.Error(), "address already in use") {
		return portInUse{err}
	}
	return err
}
