package e2e

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/peersession/peersession/examples/twonode/demo"
	"github.com/stretchr/testify/require"
)

// chromiumPath finds Debian's Chromium; the test fails without it, since a
// skipped browser test would pass CI without checking anything.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Fatal("Chromium not found: install it with `apt-get update && apt-get install -y chromium` (.ci/run does this)")
	return ""
}

// TestPageInBrowser logs in and fills the cart through the demo's proxy in
// headless Chromium, then reloads until the other node serves the page and
// checks the session is the same there: real browser cookie handling
// (HttpOnly, SameSite) end to end.
func TestPageInBrowser(t *testing.T) {
	d, browser, run, text := browserOnDemo(t, demo.Config{})

	run("log in", logIn(d, 900, 760, "dave")...)
	require.Equal(t, "dave", text(`#user`))
	run("add an item", addItem("kiwi")...)
	node := text(`#node`)
	require.Contains(t, []string{"A", "B"}, node)
	require.Equal(t, "kiwi", text(`#cart li`))

	// The session cookie as the browser keeps it: HttpOnly, SameSite=Lax.
	cookies, err := chromedp.Run(browser, func(ctx context.Context, tgt *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tgt, network.GetCookies, network.GetCookiesParams{URLs: []string{d.URL()}})
		return res.Cookies, err
	})
	require.NoError(t, err)
	require.Len(t, cookies, 1, "one session cookie")
	require.True(t, cookies[0].HTTPOnly, "the session cookie is HttpOnly")
	require.Equal(t, network.CookieSameSiteLax, cookies[0].SameSite)
	script, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.cookie`))
	require.NoError(t, err)
	require.Empty(t, script, "page scripts cannot read the session cookie")

	// Reload until the load balancer picks the other node.
	other := node
	for i := 0; i < 20 && other == node; i++ {
		run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#node`)))
		other = text(`#node`)
	}
	require.NotEqual(t, node, other, "20 reloads never reached the other node")
	require.Equal(t, "dave", text(`#user`), "node %s knows the user", other)
	items := strings.Fields(text(`#cart ul`))
	require.True(t, slices.Contains(items, "kiwi"), "node %s shows the cart %v", other, items)

	if path := os.Getenv("E2E_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, png, 0o644))
	}
}
