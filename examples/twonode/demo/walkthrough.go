package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Walkthrough plays a user against the proxy and prints each step: which
// node served it and what the session held. It logs in, fills a cart on
// alternating nodes, stops node A, keeps shopping on B, starts A again and
// shows that A caught up, then logs out. It returns an error, after
// printing it, at the first step whose outcome is not the expected one.
func (d *Demo) Walkthrough(ctx context.Context, out io.Writer) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	w := &walker{ctx: ctx, out: out, client: &http.Client{Jar: jar, Timeout: 5 * time.Second}}
	for _, n := range d.nodes {
		if n == nil {
			return fmt.Errorf("demo: Walkthrough needs both nodes running")
		}
	}
	fmt.Fprintf(out, "Walkthrough through the proxy %s (round robin, not sticky).\n", d.URL())
	fmt.Fprintf(out, "[A] or [B]: the node that served the request.\n\n")

	items := []string{}
	served := map[string]bool{}
	steps := []func() error{
		func() error {
			return w.waitMembers("A and B form a cluster", d.URL(), []string{"A", "B"}, d.nodes[A], d.nodes[B])
		},
		func() error {
			return w.cart("look at the cart, not logged in", "GET", d.URL(), "/cart", nil, "", items, nil)
		},
		func() error {
			return w.cart("log in as alice", "POST", d.URL(), "/login", url.Values{"user": {"alice"}}, "alice", items, served)
		},
	}
	for _, item := range []string{"apple", "bread", "cheese"} {
		steps = append(steps, func() error {
			items = append(items, item)
			return w.cart("add "+item, "POST", d.URL(), "/cart", url.Values{"item": {item}}, "alice", items, served)
		})
	}
	steps = append(steps,
		func() error {
			if !served["A"] || !served["B"] {
				return w.fail("both nodes served the session", fmt.Errorf("only %v served it", served))
			}
			return w.note("A and B both served alice", "the proxy alternates, the session follows")
		},
		func() error {
			if err := d.StopNode(ctx, A); err != nil {
				return w.fail("stop node A", err)
			}
			return w.note("stop node A", "HTTP server shut down, store closed: A left the cluster")
		},
		func() error { return w.waitMembers("B sees A gone", d.URL(), []string{"B"}) },
		func() error {
			return w.cart("look at the cart", "GET", d.URL(), "/cart", nil, "alice", items, nil, "B")
		},
		func() error {
			items = append(items, "dates")
			return w.cart("add dates", "POST", d.URL(), "/cart", url.Values{"item": {"dates"}}, "alice", items, nil, "B")
		},
		func() error {
			if err := d.StartNode(ctx, A); err != nil {
				return w.fail("start node A again", err)
			}
			n := d.nodes[A].Store().Len()
			if n == 0 {
				return w.fail("start node A again", fmt.Errorf("A holds no session after WaitReady"))
			}
			return w.note("start node A again", fmt.Sprintf("A joined B and holds %d session(s) before serving", n))
		},
		func() error {
			return w.cart("look at the cart on A, directly", "GET", d.nodes[A].URL(), "/cart", nil, "alice", items, nil, "A")
		},
		func() error { return w.waitMembers("A is back", d.URL(), []string{"A", "B"}, d.nodes[A], d.nodes[B]) },
		func() error {
			items = append(items, "eggs")
			clear(served)
			return w.cart("add eggs", "POST", d.URL(), "/cart", url.Values{"item": {"eggs"}}, "alice", items, served)
		},
		func() error { return w.cart("look at the cart", "GET", d.URL(), "/cart", nil, "alice", items, served) },
		func() error {
			if !served["A"] || !served["B"] {
				return w.fail("both nodes serve again", fmt.Errorf("only %v served", served))
			}
			return w.note("A and B both serve alice again", "")
		},
		func() error { return w.logout(d) },
	)
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := step(); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "Every step held.")
	return nil
}

// walker is the user of Walkthrough: one cookie jar, like one browser.
type walker struct {
	ctx    context.Context
	out    io.Writer
	client *http.Client
	n      int // steps printed
}

func (w *walker) line(desc, node, held string) {
	w.n++
	if node != "" {
		node = "[" + node + "]"
	}
	fmt.Fprintf(w.out, "%3d. %-34s %-3s %s\n", w.n, desc, node, held)
}

func (w *walker) note(desc, held string) error {
	w.line(desc, "", held)
	return nil
}

func (w *walker) fail(desc string, err error) error {
	w.line(desc, "", "")
	fmt.Fprintf(w.out, "     FAILED: %v\n", err)
	return fmt.Errorf("demo: walkthrough step %d (%s): %w", w.n, desc, err)
}

// cart sends one request that answers a Cart, prints it and checks the
// user and items; served, if not nil, records the node; onlyNode, if
// given, is the node that must serve it.
func (w *walker) cart(desc, method, base, path string, form url.Values, user string, items []string, served map[string]bool, onlyNode ...string) error {
	var c Cart
	if err := w.do(method, base+path, form, &c); err != nil {
		return w.fail(desc, err)
	}
	w.line(desc, c.Node, fmt.Sprintf("user %q, cart %v", c.User, c.Items))
	var err error
	switch {
	case c.User != user:
		err = fmt.Errorf("user is %q, want %q", c.User, user)
	case !slices.Equal(c.Items, items):
		err = fmt.Errorf("cart is %v, want %v", c.Items, items)
	case len(onlyNode) > 0 && c.Node != onlyNode[0]:
		err = fmt.Errorf("served by %q, want %q", c.Node, onlyNode[0])
	}
	if err != nil {
		fmt.Fprintf(w.out, "     FAILED: %v\n", err)
		return fmt.Errorf("demo: walkthrough step %d (%s): %w", w.n, desc, err)
	}
	if served != nil {
		served[c.Node] = true
	}
	return nil
}

// waitMembers polls /cluster, through the proxy and on each given node
// directly, until all list exactly want: membership news takes a few
// gossip rounds.
func (w *walker) waitMembers(desc, proxy string, want []string, nodes ...*Node) error {
	urls := []string{proxy}
	for _, n := range nodes {
		urls = append(urls, n.URL())
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var seen []string
		ok := true
		for _, u := range urls {
			var v ClusterView
			if err := w.do("GET", u+"/cluster", nil, &v); err != nil {
				return w.fail(desc, err)
			}
			if s := fmt.Sprintf("%s sees %v", v.Node, v.Members); !slices.Contains(seen, s) {
				seen = append(seen, s)
			}
			ok = ok && slices.Equal(v.Members, want)
		}
		if ok {
			return w.note(desc, strings.Join(seen, ", "))
		}
		if time.Now().After(deadline) {
			return w.fail(desc, fmt.Errorf("members never became %v: %s", want, strings.Join(seen, ", ")))
		}
		select {
		case <-tick.C:
		case <-w.ctx.Done():
			return w.fail(desc, w.ctx.Err())
		}
	}
}

// logout logs out through the proxy, then presents the old cookie to both
// nodes directly: the session has ended on both.
func (w *walker) logout(d *Demo) error {
	const desc = "log out"
	u, err := url.Parse(d.URL())
	if err != nil {
		return w.fail(desc, err)
	}
	old := w.client.Jar.Cookies(u)
	var c Cart
	if err := w.do("POST", d.URL()+"/logout", nil, &c); err != nil {
		return w.fail(desc, err)
	}
	w.line(desc, c.Node, "session destroyed")

	const desc2 = "replay the old cookie on A and B"
	jar, _ := cookiejar.New(nil)
	replay := &walker{ctx: w.ctx, out: io.Discard, client: &http.Client{Jar: jar, Timeout: 5 * time.Second}}
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range []*Node{d.nodes[A], d.nodes[B]} {
		nu, _ := url.Parse(n.URL())
		for {
			jar.SetCookies(nu, old) // the node's answer may have expired it
			var c Cart
			if err := replay.do("GET", n.URL()+"/cart", nil, &c); err != nil {
				return w.fail(desc2, err)
			}
			if c.User == "" {
				break
			}
			if time.Now().After(deadline) {
				return w.fail(desc2, fmt.Errorf("node %s still knows user %q", c.Node, c.User))
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-w.ctx.Done():
				return w.fail(desc2, w.ctx.Err())
			}
		}
	}
	return w.note(desc2, "not logged in on either: the session ended everywhere")
}

// do sends a request and decodes its JSON answer into v.
func (w *walker) do(method, u string, form url.Values, v any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(w.ctx, method, u, body)
	if err != nil {
		return err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: %w", method, u, err)
	}
	return nil
}
