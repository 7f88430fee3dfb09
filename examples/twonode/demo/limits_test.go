package demo_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A client that fills its session past Config.MaxSessionBytes gets a 4xx
// (413), never a 5xx: 2,000 adds of 100-byte items into one cart, as a
// black-box client would send them.
func TestCartOverTheSessionLimitIs413NotA5xx(t *testing.T) {
	srv := soloServer(t)
	c := newClient(t)

	post := func(path string, form url.Values) int {
		resp, err := c.PostForm(srv.URL+path, form)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, post("/login", url.Values{"user": {"alice"}}))
	codes := map[int]int{}
	for i := range 2000 {
		codes[post("/cart", url.Values{"item": {fmt.Sprintf("%04d", i) + strings.Repeat("x", 96)}})]++
	}
	for code, n := range codes {
		require.Less(t, code, 500, "%d answers of %d", n, code)
	}
	require.Positive(t, codes[http.StatusRequestEntityTooLarge], "the limit was reached: %v", codes)
	require.Positive(t, codes[http.StatusOK], "adds below the limit succeed: %v", codes)
}
