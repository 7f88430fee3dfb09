// Package testlog is a log sink for tests: safe for the goroutines of the
// code under test, and read back as text.
package testlog

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer collects what is written to it, for slog.NewTextHandler and the
// like. Its zero value is ready to use.
type Buffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines returns what was written, a line each, without empty lines.
func (l *Buffer) Lines() []string {
	return strings.FieldsFunc(l.String(), func(r rune) bool { return r == '\n' })
}

// Count returns how many times s was written (strings.Count).
func (l *Buffer) Count(s string) int {
	return strings.Count(l.String(), s)
}
