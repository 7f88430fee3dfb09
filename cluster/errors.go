package cluster

import (
	"errors"
	"fmt"
	"regexp"
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

// Why a seed that answered did not take this node in; a *JoinError wraps
// one of them, so callers can branch with errors.Is.
var (
	// ErrKeysDiffer: the seed could not authenticate this node, or this
	// node the seed: their keyrings share no key, or only one has keys.
	ErrKeysDiffer = errors.New("cluster: the keys differ")
	// ErrLabelsDiffer: the seed closed the connection without a reply,
	// as memberlist does to a node with another Label.
	ErrLabelsDiffer = errors.New("cluster: the labels differ")
	// ErrNameTaken: another live node has this node's Name.
	ErrNameTaken = errors.New("cluster: the name is taken")
	// ErrCopiesDiffer: the seed's cluster holds each piece of data on
	// another number of members than this node's Config.Copies says.
	ErrCopiesDiffer = errors.New("cluster: the copies differ")
)

// JoinError is Join's error when seeds answered but none took this node
// in: a misconfiguration that retrying will not cure. It describes the
// first such seed.
type JoinError struct {
	// Seed is the seed that answered, as written in Config.Seeds.
	Seed string
	// Err is ErrKeysDiffer, ErrLabelsDiffer, ErrNameTaken or
	// ErrCopiesDiffer.
	Err error
	// Holder is, for ErrNameTaken, the live node that has the name; for
	// ErrCopiesDiffer, the member whose Copies differs.
	Holder Peer

	text fieldText
}

func (e *JoinError) Error() string { return "cluster: join: " + e.text.format(configName) }

func (e *JoinError) Unwrap() error { return e.Err }

// Message is the error's text without the package prefix, with each
// Config field it names written by name (name("Keys") is "Config.Keys" in
// Error). A package that exposes these fields under other names words the
// error in them.
func (e *JoinError) Message(name func(field string) string) string { return e.text.format(name) }

// ConfigError is a Config field New refuses.
type ConfigError struct {
	// Field is the field at fault, as named in Config: "Keys", "BindAddr".
	Field string

	text fieldText
}

func configErr(field, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, text: fieldText{format, args}}
}

func (e *ConfigError) Error() string { return "cluster: " + e.text.format(configName) }

// Message is as JoinError's.
func (e *ConfigError) Message(name func(field string) string) string { return e.text.format(name) }

// fieldText is a message naming Config fields in braces, "{Keys} is
// empty", and the values to format into it once the names are in (so that a
// brace in a value is never taken for a field).
type fieldText struct {
	layout string // fmt verbs, and {Field} for each field name
	args   []any
}

func configName(field string) string { return "Config." + field }

var fieldRef = regexp.MustCompile(`\{[A-Za-z]+\}`)

// format writes the message with each {Field} replaced by name(Field).
func (t fieldText) format(name func(string) string) string {
	f := fieldRef.ReplaceAllStringFunc(t.layout, func(ref string) string {
		return strings.ReplaceAll(name(ref[1:len(ref)-1]), "%", "%%")
	})
	return fmt.Sprintf(f, t.args...)
}
