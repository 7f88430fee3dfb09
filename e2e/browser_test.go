package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/peersession/peersession/examples/twonode/demo"
)

// browserOnDemo starts the demo with cfg and a headless Chromium (the
// flags the machine needs: no sandbox as root, no background requests out
// of a closed network), both stopped when the test ends, and returns the
// demo, the browser's context, and helpers that run steps in it and read
// an element's text, failing the test on an error.
func browserOnDemo(t *testing.T, cfg demo.Config) (d *demo.Demo, browser context.Context,
	run func(what string, steps ...chromedp.Action[chromedp.Void]), text func(sel string) string) {
	t.Helper()
	chromium := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)

	d, err := demo.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close(context.Background())) })

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser) // registered last, so the browser stops first

	run = func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(browser, steps...), what)
	}
	text = func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, "text of %s", sel)
		return strings.TrimSpace(s)
	}
	return d, browser, run, text
}

// logIn is the steps of a user who opens the demo's page through its proxy
// in a window of width×height pixels and logs in as user.
func logIn(d *demo.Demo, width, height int64, user string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.EmulateViewport(width, height),
		chromedp.Navigate(d.URL() + "/"),
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), user),
		chromedp.Click(chromedp.CSS(`#session button`)),
		chromedp.WaitVisible(chromedp.CSS(`#user`)),
	}
}

// addItem is the steps of a logged-in user who adds item to the cart.
func addItem(item string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.CSS(`input[name=item]`), item),
		chromedp.Click(chromedp.CSS(`#cart button`)),
		chromedp.WaitVisible(chromedp.CSS(`#cart li`)),
	}
}
