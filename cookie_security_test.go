package peersession

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Behind a TLS-terminating load balancer the request reaching the app is
// plain HTTP: the proxy's X-Forwarded-Proto or Forwarded header says the
// client used https, and the cookie must be Secure. __Host-/__Secure-
// names and SameSite=None need Secure whatever the scheme, or browsers
// drop the cookie.
func TestCookieIsSecureWhenTheClientUsedTLS(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cookie CookieConfig
		header map[string]string
		tls    bool
		want   bool
	}{
		{name: "plain http", want: false},
		{name: "tls", tls: true, want: true},
		{name: "X-Forwarded-Proto https", header: map[string]string{"X-Forwarded-Proto": "https"}, want: true},
		{name: "X-Forwarded-Proto chain, client https", header: map[string]string{"X-Forwarded-Proto": "https, http"}, want: true},
		{name: "X-Forwarded-Proto http", header: map[string]string{"X-Forwarded-Proto": "http"}, want: false},
		{name: "Forwarded proto=https", header: map[string]string{"Forwarded": `for=192.0.2.60;proto=https;by=203.0.113.43`}, want: true},
		{name: "Forwarded proto=http", header: map[string]string{"Forwarded": "proto=http"}, want: false},
		{name: "__Host- name", cookie: CookieConfig{Name: "__Host-session"}, want: true},
		{name: "__Secure- name", cookie: CookieConfig{Name: "__Secure-session"}, want: true},
		{name: "SameSite=None", cookie: CookieConfig{SameSite: http.SameSiteNoneMode}, want: true},
		{name: "forced", cookie: CookieConfig{Secure: true}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newTestStore(t, Config{Cookie: tc.cookie})
			req := httptest.NewRequest("POST", "/set?k=a&v=1", nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			if tc.tls {
				req.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			testApp(st).ServeHTTP(rec, req)
			cookies := rec.Result().Cookies()
			require.Len(t, cookies, 1)
			assert.Equal(t, tc.want, cookies[0].Secure)
		})
	}
}

// A __Host- cookie is accepted by browsers only with Path=/ and no
// Domain: a configuration that contradicts it is an error, not a cookie
// that silently never arrives.
func TestHostPrefixWithADomainIsAConfigError(t *testing.T) {
	_, err := New(Config{Cookie: CookieConfig{Name: "__Host-s", Domain: "example.com"}})
	assert.ErrorContains(t, err, "__Host-")
	_, err = New(Config{Cookie: CookieConfig{Name: "__Host-s", Path: "/app"}})
	assert.ErrorContains(t, err, "__Host-")
}

// Cookie tossing: a cookie of the same name planted from a sibling
// subdomain, or for a longer path, arrives first. When it names no
// session and the user's own cookie does, the user's wins: the planted
// one can neither log the user out nor slip in the attacker's session.
func TestPlantedCookieDoesNotShadowTheUsersSession(t *testing.T) {
	st := newTestStore(t, Config{})
	ctx := context.Background()
	own := savedSession(t, st, "user", "alice")

	for name, planted := range map[string]string{
		"a token naming nothing": newToken(),
		"an ended session of the user": func() string {
			ended := savedSession(t, st, "user", "bob")
			require.NoError(t, st.Delete(ctx, ended))
			return ended
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/get?k=user", nil)
			req.Header.Set("Cookie", "session="+planted+"; session="+own)
			rec := httptest.NewRecorder()
			testApp(st).ServeHTTP(rec, req)
			assert.Equal(t, "true:alice", rec.Body.String())
		})
	}

	// Two live sessions: the first cookie still wins, as browsers send the
	// most specific (longest path) first.
	other := savedSession(t, st, "user", "bob")
	req := httptest.NewRequest("GET", "/get?k=user", nil)
	req.Header.Set("Cookie", "session="+other+"; session="+own)
	rec := httptest.NewRecorder()
	testApp(st).ServeHTTP(rec, req)
	assert.Equal(t, "true:bob", rec.Body.String())
}
