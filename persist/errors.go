package persist

import "errors"

// Errors a load returns, each wrapped with the file and what to do.
var (
	// ErrForeign: a file with a data file's name is not one.
	ErrForeign = errors.New("persist: not a peersession data file")
	// ErrVersion: the file was written by a release with another format.
	ErrVersion = errors.New("persist: unsupported data file version")
	// ErrWrongKey: no key given opens the file.
	ErrWrongKey = errors.New("persist: data file encrypted with another key")
	// ErrCorrupt: the file is damaged (or was tampered with) other than at
	// a log's end, where a crash leaves a torn write that is skipped.
	ErrCorrupt = errors.New("persist: data file damaged")
	// ErrTruncated: a snapshot, written whole before being renamed into
	// place, ends early.
	ErrTruncated = errors.New("persist: data file truncated")
	// ErrLocked: another process uses the directory.
	ErrLocked = errors.New("persist: data directory in use by another process")
	// ErrClosed: the Disk is closed.
	ErrClosed = errors.New("persist: closed")
)
