package peersession_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/peersession/peersession"
)

// A single-node store: the zero Config works. Wrap the app's handler with
// the middleware and use FromContext in handlers.
func Example() {
	store, err := peersession.New(peersession.Config{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("/visit", func(w http.ResponseWriter, r *http.Request) {
		s := peersession.FromContext(r.Context())
		var n int
		if _, err := s.Get("visits", &n); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := s.Set("visits", n+1); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit %d", n+1)
	})
	srv := httptest.NewServer(store.Middleware(mux))
	defer srv.Close()

	// A browser: keep the cookie between requests.
	var cookie *http.Cookie
	for range 3 {
		req, _ := http.NewRequest("GET", srv.URL+"/visit", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, c := range res.Cookies() {
			cookie = c
		}
		fmt.Println(string(body))
	}
	// Output:
	// visit 1
	// visit 2
	// visit 3
}

// Log in: tag the session with the user and give it a new ID, so an ID
// planted before login is worthless. Later, end every session of that user.
func ExampleStore_DestroyPrincipal() {
	store, _ := peersession.New(peersession.Config{})
	defer store.Close()
	ctx := context.Background()

	for range 2 { // alice logs in from two devices
		s := store.NewSession(ctx)
		_ = s.SetPrincipal("alice")
		_ = s.Set("user", "alice")
		if _, err := store.Save(ctx, s); err != nil {
			panic(err)
		}
	}
	fmt.Println(len(store.PrincipalSessions("alice")), "sessions")

	n, _ := store.DestroyPrincipal(ctx, "alice") // password changed
	fmt.Println(n, "ended;", len(store.PrincipalSessions("alice")), "left")
	// Output:
	// 2 sessions
	// 2 ended; 0 left
}

// Sessions outside HTTP: create, load by token, change, save.
func ExampleStore_Load() {
	store, _ := peersession.New(peersession.Config{})
	defer store.Close()
	ctx := context.Background()

	s := store.NewSession(ctx)
	_ = s.Set("cart", []string{"apple"})
	token, _ := store.Save(ctx, s)

	s, err := store.Load(ctx, token)
	if err != nil {
		panic(err)
	}
	var cart []string
	_, _ = s.Get("cart", &cart)
	_ = s.Set("cart", append(cart, "pear"))
	_, _ = store.Save(ctx, s)

	s, _ = store.Load(ctx, token)
	_, _ = s.Get("cart", &cart)
	fmt.Println(cart)
	// Output: [apple pear]
}

// RenewID at login keeps the data and retires the old ID.
func ExampleSession_RenewID() {
	store, _ := peersession.New(peersession.Config{})
	defer store.Close()
	ctx := context.Background()

	s := store.NewSession(ctx)
	_ = s.Set("cart", []string{"apple"})
	before, _ := store.Save(ctx, s)

	s.RenewID()
	_ = s.SetPrincipal("alice")
	after, _ := store.Save(ctx, s)

	_, err := store.Load(ctx, before)
	fmt.Println("old token:", err)
	s, _ = store.Load(ctx, after)
	fmt.Println("new token holds", s.Keys())
	// Output:
	// old token: peersession: session not found
	// new token holds [cart]
}

// A clustered node: join the others, wait for the state transfer, then
// serve; on shutdown, stop taking requests first, then close the store
// (which flushes queued changes and leaves the cluster).
func ExampleClusterConfig() {
	key, err := peersession.ReadKeyFile("/etc/myapp/cluster.key") // head -c 32 /dev/urandom | base64
	if err != nil {
		panic(err)
	}
	store, err := peersession.New(peersession.Config{Cluster: &peersession.ClusterConfig{
		Name:        "web-1",
		BindAddr:    "10.0.0.1",
		BindPort:    7946,
		Join:        []string{"10.0.0.2:7946", "10.0.0.3:7946"},
		Keys:        [][]byte{key},
		Consistency: peersession.Sync, // a write returns once a peer holds it
	}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := store.WaitReady(ctx); err != nil {
		panic(err)
	}
	srv := &http.Server{Addr: ":8080", Handler: store.Middleware(http.NotFoundHandler())}
	go srv.ListenAndServe()

	// ... on SIGTERM:
	_ = srv.Shutdown(ctx)
	_ = store.Close()
}
