package cluster

import "errors"

// Sentinel errors callers may branch on with errors.Is.
var (
	// ErrUnknownPeer is returned by Send when the peer ID is not a live member.
	ErrUnknownPeer = errors.New("cluster: unknown peer")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("cluster: node closed")
	// ErrFrameTooLarge is returned by Send for a frame over Config.MaxFrame.
	ErrFrameTooLarge = errors.New("cluster: frame too large")
)
