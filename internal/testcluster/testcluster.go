// Package testcluster is what the tests of the root package, cluster/ and
// the adapters share to run nodes on loopback and talk to them: memberlist
// timers that detect a dead node in well under a second, and a browser
// stand-in with a cookie jar.
//
// It imports neither the root package nor cluster/, so that their
// in-package tests can use it without an import cycle.
package testcluster

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

// FastTimers makes memberlist detect a dead node in well under a second,
// with enough slack that a loaded machine running -race does not declare
// live nodes dead. A test that needs other timings calls it first and
// then changes what it needs.
func FastTimers(c *memberlist.Config) {
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspicionMult = 3
	c.SuspicionMaxTimeoutMult = 2
	c.GossipInterval = 10 * time.Millisecond
	c.PushPullInterval = 200 * time.Millisecond
	c.TCPTimeout = 500 * time.Millisecond
	c.IndirectChecks = 1
	c.GossipToTheDeadTime = time.Second
	c.DeadNodeReclaimTime = time.Second
}

// Browser is a browser stand-in: an http.Client with its own cookie jar.
// Cookies do not depend on the port, so one Browser carries its cookies
// between two test servers on 127.0.0.1, as between two nodes behind a
// load balancer.
type Browser struct {
	t      testing.TB
	Client *http.Client
}

// NewBrowser returns a Browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &Browser{t: t, Client: &http.Client{Jar: jar}}
}

// Do runs a request with no body and returns the response (its body
// closed) and the body read.
func (b *Browser) Do(method, u string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(b.t, err)
	res, err := b.Client.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res, string(body)
}

// Get is Do with GET.
func (b *Browser) Get(u string) (*http.Response, string) {
	b.t.Helper()
	return b.Do(http.MethodGet, u)
}

// Body returns just the body of a GET.
func (b *Browser) Body(u string) string {
	b.t.Helper()
	_, body := b.Get(u)
	return body
}

// Cookie returns the value of the jar's cookie name for u, or "".
func (b *Browser) Cookie(u, name string) string {
	b.t.Helper()
	for _, c := range b.Client.Jar.Cookies(b.parse(u)) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// SetCookie plants a cookie for u (path "/") in the jar, as an attacker,
// or a client replaying an old cookie, would.
func (b *Browser) SetCookie(u, name, value string) {
	b.t.Helper()
	b.Client.Jar.SetCookies(b.parse(u), []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

func (b *Browser) parse(u string) *url.URL {
	b.t.Helper()
	pu, err := url.Parse(u)
	require.NoError(b.t, err)
	return pu
}
