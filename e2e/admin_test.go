package e2e

import (
	"context"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/peersession/peersession/examples/twonode/demo"
	"github.com/stretchr/testify/require"
)

// TestAdminPageInBrowser logs a user in through the demo's proxy, opens
// node A's admin page (basic auth, scripts off: the page must work
// without them), finds the user's session there and ends it with the
// page's button; the session is then gone from both nodes, and the
// user's next requests through the proxy, to either node, find them
// logged out; with scripts on, the page's script runs. With
// PEERSESSION_SCREENSHOT=path it saves a PNG of the page before the
// session ends (docs/admin.png is one).
func TestAdminPageInBrowser(t *testing.T) {
	d, browser, run, text := browserOnDemo(t, demo.Config{AdminPassword: "e2e-admin"})

	run("log in through the proxy", logIn(d, 1100, 1000, "erin")...)
	run("add an item", addItem("kiwi")...)
	require.Equal(t, "erin", text(`#user`))
	both := func(cond func(*demo.Node) bool) func() bool {
		return func() bool { return cond(d.Node(demo.A)) && cond(d.Node(demo.B)) }
	}
	require.Eventually(t, both(func(n *demo.Node) bool { return len(n.Store().PrincipalSessions("erin")) == 1 }),
		10*time.Second, 10*time.Millisecond, "erin's session on both nodes")

	// The operator: basic auth on every request, and no scripts.
	auth := base64.StdEncoding.EncodeToString([]byte(demo.AdminUser + ":" + d.AdminPassword()))
	run("operator's browser",
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, network.SetExtraHTTPHeaders,
				network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Basic " + auth}})
			return err
		}),
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, emulation.SetScriptExecutionDisabled,
				emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}),
	)
	admin := d.Node(demo.A).AdminURL()
	require.NotEmpty(t, admin)
	run("open the admin page and look up erin",
		chromedp.Navigate(admin),
		chromedp.WaitVisible(chromedp.CSS(`#members`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=principal]`), "erin"),
		chromedp.Submit(chromedp.CSS(`input[name=principal]`)),
		chromedp.WaitVisible(chromedp.CSS(`#principal-sessions`)),
	)
	require.Equal(t, "A", text(`#node`))
	members := text(`#members tbody`)
	require.Contains(t, members, "A this node")
	require.Contains(t, members, "B")
	require.Equal(t, 2, strings.Count(members, "alive"), "members: %s", members)
	require.Contains(t, text(`#peers tbody`), "B")
	rows := text(`#principal-sessions tbody`)
	require.Equal(t, 1, strings.Count(rows, "End"), "one session of erin: %s", rows)

	if path := os.Getenv("PEERSESSION_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, png, 0o644))
	}

	run("end erin's session",
		chromedp.Click(chromedp.CSS(`#principal-sessions button`)),
		chromedp.WaitVisible(chromedp.CSS(`#ended`)),
	)
	require.Equal(t, "Ended 1 session of erin, on every node.", text(`#ended`))
	require.Equal(t, "No live session of erin.", text(`#no-sessions`))
	require.Eventually(t, both(func(n *demo.Node) bool { return len(n.Store().PrincipalSessions("erin")) == 0 }),
		10*time.Second, 10*time.Millisecond, "erin's session ended on both nodes")

	// The user's next requests, through the proxy: logged out on both nodes.
	seen := map[string]bool{}
	for i := 0; i < 20 && len(seen) < 2; i++ {
		run("the user reloads", chromedp.Navigate(d.URL()+"/"), chromedp.WaitVisible(chromedp.CSS(`#node`)))
		node := text(`#node`)
		require.Equal(t, "Not logged in", text(`#session h2`), "node %s", node)
		seen[node] = true
	}
	require.Len(t, seen, 2, "20 requests never reached both nodes")

	// With scripts on, the page's own script runs under its
	// Content-Security-Policy: it shows the auto-refresh box.
	run("the admin page with scripts",
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, emulation.SetScriptExecutionDisabled,
				emulation.SetScriptExecutionDisabledParams{Value: false})
			return err
		}),
		chromedp.Navigate(admin),
		chromedp.WaitVisible(chromedp.CSS(`#autorefresh`)),
	)
}
