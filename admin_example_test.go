package peersession_test

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/peersession/peersession"
)

// basicAuth lets through only requests with the user and password; the
// admin page has no access control of its own.
func basicAuth(user, password string, h http.Handler) http.Handler {
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

// The admin page, on an internal address apart from the app's, behind
// basic auth: it shows user names and ends sessions, so whoever reaches it
// must be an operator.
func ExampleStore_AdminHandler() {
	store, err := peersession.New(peersession.Config{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	internal := http.NewServeMux()
	internal.Handle("/admin/", http.StripPrefix("/admin", basicAuth("admin", "s3cret", store.AdminHandler())))
	internal.Handle("/status", store.StatusHandler())
	// In an app: go http.ListenAndServe("10.0.0.5:9090", internal)
	srv := httptest.NewServer(internal)
	defer srv.Close()

	res, _ := http.Get(srv.URL + "/admin/")
	fmt.Println("without a password:", res.Status)
	res.Body.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/admin/?principal=alice", nil)
	req.SetBasicAuth("admin", "s3cret")
	res, _ = http.DefaultClient.Do(req)
	fmt.Println("with it:", res.Status, res.Header.Get("Content-Type"))
	res.Body.Close()
	// Output:
	// without a password: 401 Unauthorized
	// with it: 200 OK text/html; charset=utf-8
}
