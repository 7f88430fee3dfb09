package peersession

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNewTokenIsValidAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := newToken()
		assert.True(t, validToken(tok), tok)
		assert.False(t, seen[tok])
		seen[tok] = true
	}
}

func TestParseValue(t *testing.T) {
	tok := newToken()
	for _, c := range []struct {
		in    string
		token string
		stamp int64
	}{
		{tok, tok, 0},
		{tok + ".abc", tok, 13368},
		{tok + ".", tok, 0},
		{tok + ".-5", tok, 0},
		{tok + ".zzzzzzzzzzzzzz", tok, 0}, // 14 digits: too long, ignored
		{tok + ".!!", tok, 0},
		{"", "", 0},
		{tok[:42], "", 0},
		{strings.Repeat("A", 42) + "B", "", 0}, // stray bits in the last character
		{tok + tok, "", 0},
	} {
		gotTok, gotStamp := parseCookie(c.in)
		assert.Equal(t, c.token, gotTok, c.in)
		assert.Equal(t, c.stamp, gotStamp, c.in)
	}
}

// FuzzParseCookie: whatever a client sends as a cookie or header, parsing
// never panics, accepts only canonical tokens, and round-trips.
func FuzzParseCookie(f *testing.F) {
	f.Add(newToken())
	f.Add(newToken() + ".k3j2h1")
	f.Add(strings.Repeat("A", 4096))
	f.Add("")
	f.Add("....")
	f.Fuzz(func(t *testing.T, v string) {
		tok, stamp := parseCookie(v)
		if tok == "" {
			return
		}
		if !validToken(tok) || stamp < 0 {
			t.Fatalf("accepted %q as token %q stamp %d", v, tok, stamp)
		}
		if t2, s2 := parseCookie(formatCookie(tok, stamp)); t2 != tok || s2 != stamp {
			t.Fatalf("round trip of %q: %q %d", v, t2, s2)
		}
	})
}
