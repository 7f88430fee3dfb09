package demo

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/peersession/peersession"
)

// AdminUser is the basic-auth user name of the admin page.
const AdminUser = "admin"

// BasicAuth lets through to h only the requests that carry user and
// password. peersession's admin page has no access control of its own:
// the app puts it on an internal address, behind its own.
func BasicAuth(user, password string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="peersession admin", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// RandomPassword returns a password for the admin page.
func RandomPassword() string { return rand.Text()[:16] }

// adminServer serves a node's internal mux: the admin page at /admin/
// and the status JSON at /status, both behind basic auth.
type adminServer struct {
	srv    *http.Server
	addr   string
	served chan struct{} // closed when Serve has returned
}

// startAdmin starts node cfg's internal server for store, or returns nil
// when cfg.AdminPassword is empty.
func startAdmin(cfg NodeConfig, store *peersession.Store) (*adminServer, error) {
	if cfg.AdminPassword == "" {
		return nil, nil
	}
	ln, err := listen(cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("demo: node %s: admin address: %w", cfg.Name, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", store.AdminHandler()))
	mux.Handle("/status", store.StatusHandler())
	a := &adminServer{
		addr:   ln.Addr().String(),
		served: make(chan struct{}),
		srv: &http.Server{
			Handler:           BasicAuth(AdminUser, cfg.AdminPassword, mux),
			ReadHeaderTimeout: 5 * time.Second,
		},
	}
	go func() {
		defer close(a.served)
		_ = a.srv.Serve(ln) // returns ErrServerClosed after Shutdown
	}()
	return a, nil
}

// stop shuts the server down; a nil server is stopped.
func (a *adminServer) stop(ctx context.Context) error {
	if a == nil {
		return nil
	}
	err := a.srv.Shutdown(ctx)
	<-a.served
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// AdminURL returns the URL of the node's admin page, such as
// "http://127.0.0.1:41235/admin/", or "" without NodeConfig.AdminPassword.
// It takes the user AdminUser and the password.
func (n *Node) AdminURL() string {
	if n.admin == nil {
		return ""
	}
	return "http://" + n.admin.addr + "/admin/"
}
