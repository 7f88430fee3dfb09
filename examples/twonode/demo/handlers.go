package demo

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/peersession/peersession"
)

// Session keys.
const (
	keyUser  = "user"
	keyItems = "items"
)

// maxField bounds a user name or an item, so a session stays small.
const maxField = 100

// Cart is the answer of POST /login, POST /cart, GET /cart and POST /logout.
type Cart struct {
	Node  string   `json:"node"`  // the node that served the request
	User  string   `json:"user"`  // "" when not logged in
	Items []string `json:"items"` // never null
}

// ClusterView is the answer of GET /cluster.
type ClusterView struct {
	Node     string   `json:"node"`
	Members  []string `json:"members"`  // names of the live members, this node included
	Sessions int      `json:"sessions"` // sessions this node holds
}

// Handler returns the app's endpoints. It must run inside
// store.Middleware, which gives every request its session.
//
//	POST /login   form user: log in (a new session ID)   -> Cart
//	POST /cart    form item: add an item to the cart      -> Cart
//	GET  /cart                                            -> Cart
//	POST /logout  end the session                         -> Cart
//	GET  /cluster                                         -> ClusterView
//	GET  /        the HTML page
//
// The POST endpoints answer an HTML form (a request that accepts
// text/html or has the form field redirect) with 303 See Other to /, and
// everything else with JSON.
func Handler(node string, store *peersession.Store) http.Handler {
	a := &app{node: node, store: store}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /cart", a.addItem)
	mux.HandleFunc("GET /cart", a.cart)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /cluster", a.cluster)
	mux.HandleFunc("GET /{$}", a.page)
	return mux
}

type app struct {
	node  string
	store *peersession.Store
}

// formField returns the form field name, trimmed; when that is empty or
// over maxField bytes it answers 400 Bad Request and ok is false.
func (a *app) formField(w http.ResponseWriter, r *http.Request, name string) (v string, ok bool) {
	v = strings.TrimSpace(r.FormValue(name))
	if v == "" || len(v) > maxField {
		a.fail(w, r, http.StatusBadRequest, fmt.Sprintf("form field %s must hold 1 to %d characters", name, maxField))
		return "", false
	}
	return v, true
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	user, ok := a.formField(w, r, "user")
	if !ok {
		return
	}
	s := peersession.FromContext(r.Context())
	if prev := a.load(s).User; prev != "" && prev != user {
		s.Delete(keyItems) // another user's cart is not this one's
	}
	// A new session ID at login makes an ID planted before it worthless
	// (session fixation); the principal lets the app log a user out
	// everywhere (Store.DestroyPrincipal).
	if err := s.RenewID(); err != nil {
		a.fail(w, r, peersession.StatusCode(err), err.Error())
		return
	}
	if err := s.SetPrincipal(user); err != nil {
		a.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.Set(keyUser, user); err != nil {
		a.fail(w, r, peersession.StatusCode(err), err.Error())
		return
	}
	a.reply(w, r, s)
}

func (a *app) addItem(w http.ResponseWriter, r *http.Request) {
	item, ok := a.formField(w, r, "item")
	if !ok {
		return
	}
	s := peersession.FromContext(r.Context())
	c := a.load(s)
	if c.User == "" {
		a.fail(w, r, http.StatusUnauthorized, "log in first: POST /login with form field user")
		return
	}
	// The whole list is one key: two adds at the same instant on two
	// nodes keep the later one. Keys that must merge go in keys of their
	// own (each key has its own version).
	if err := s.Set(keyItems, append(c.Items, item)); err != nil {
		a.fail(w, r, peersession.StatusCode(err), err.Error())
		return
	}
	a.reply(w, r, s)
}

func (a *app) cart(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.load(peersession.FromContext(r.Context())))
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := peersession.FromContext(r.Context()).Destroy(); err != nil {
		a.fail(w, r, peersession.StatusCode(err), err.Error())
		return
	}
	if wantsHTML(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, Cart{Node: a.node, Items: []string{}})
}

func (a *app) cluster(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.view())
}

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	data := struct {
		Cart
		Cluster ClusterView
		Hue     int // the header's colour, one per node
	}{a.load(peersession.FromContext(r.Context())), a.view(), hue(a.node)}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := pageTmpl.Execute(w, data); err != nil {
		slog.Error("demo: render page", "err", err)
	}
}

// hue picks a colour for a node name, so the nodes look different.
func hue(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % 360)
}

// load reads the cart from the session.
func (a *app) load(s *peersession.Session) Cart {
	c := Cart{Node: a.node, Items: []string{}}
	if _, err := s.Get(keyUser, &c.User); err != nil {
		slog.Warn("demo: session value user", "err", err)
	}
	if c.User == "" {
		return Cart{Node: a.node, Items: []string{}}
	}
	if _, err := s.Get(keyItems, &c.Items); err != nil {
		slog.Warn("demo: session value items", "err", err)
	}
	if c.Items == nil {
		c.Items = []string{}
	}
	return c
}

// view returns the cluster as this node sees it.
func (a *app) view() ClusterView {
	v := ClusterView{Node: a.node, Members: []string{}, Sessions: a.store.Len()}
	for _, m := range a.store.Members() {
		if m.State == "alive" {
			v.Members = append(v.Members, m.Name)
		}
	}
	if len(v.Members) == 0 { // a store without Config.Cluster
		v.Members = append(v.Members, a.node)
	}
	return v
}

// reply answers a successful POST: a redirect for a browser form, the cart
// as JSON otherwise.
func (a *app) reply(w http.ResponseWriter, r *http.Request, s *peersession.Session) {
	if wantsHTML(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, a.load(s))
}

// fail answers a bad request: back to the page for a browser form, which
// has nothing useful to show of the error, a JSON error otherwise.
func (a *app) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if wantsHTML(r) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	writeJSON(w, code, map[string]string{"node": a.node, "error": msg})
}

// wantsHTML reports whether a POST came from the page's forms.
func wantsHTML(r *http.Request) bool {
	return r.FormValue("redirect") != "" || strings.Contains(r.Header.Get("Accept"), "text/html")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Warn("demo: write response", "err", err)
	}
}
