package main

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peersession/peersession/bench/internal/procstat"
)

// httpClient is every request's client: a request to a paused or cut-off
// node gives up after 3 s and counts as not acknowledged.
var httpClient = &http.Client{
	Timeout:   3 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
}

// newKey returns a cluster key in base64.
func newKey() string {
	k := make([]byte, 32)
	_, _ = crand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// idOf is the store's ID of a session token (the part of the header value
// before the first dot): base64url(SHA-256(token)), as the library keys
// its sessions.
func idOf(value string) string {
	tok, _, _ := strings.Cut(value, ".")
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// getJSON fetches u into v.
func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// workload is the clients: each writes through a random node at a bounded
// rate until its context ends. Checks pause them all (gate).
type workload struct {
	urls   []string
	rate   float64 // operations per second, per client
	ledger *ledger
	opsLog *opsLog      // nil: none
	shared []string     // header values of the sessions every client writes
	gate   sync.RWMutex // clients hold it for reading around each operation; a check holds it to pause them
	wg     sync.WaitGroup

	mu     sync.Mutex      // guards epoch and cancel
	epoch  context.Context // ended by pause: the operations under way then end with it
	cancel context.CancelFunc
}

// op is one kind of client operation, with its weight in the mix.
type op struct {
	name   string
	weight int
}

// mix is the clients' operations: mostly writes to the client's own key,
// some to the shared sessions, logins (RenewID), logouts and "log out
// everywhere" (DestroyPrincipal).
// Ends are rare enough that a session lives for some seconds (about 200
// of its client's operations), so that most writes are checked by a heal's
// check before their session ends.
var mix = []op{{"own", 78}, {"shared", 15}, {"login", 5}, {"logout", 1}, {"destroy-principal", 1}}

// start runs n clients until ctx ends; wait waits for them.
func (w *workload) start(ctx context.Context, n int, seed uint64) {
	for c := range n {
		cl := &client{w: w, n: c, rng: rand.New(rand.NewPCG(seed, uint64(c)+1))}
		w.wg.Go(func() { cl.run(ctx) })
	}
}

func (w *workload) wait() { w.wg.Wait() }

// pause stops every client between two operations; resume lets them go.
// Operations under way when pause is called are cancelled, not waited
// for (a request to a stopped node would hold the pause up to its
// timeout, and the fault with it): what they did is unknown, as for any
// request that got no answer.
func (w *workload) pause() {
	w.mu.Lock()
	if w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
	w.gate.Lock()
}

func (w *workload) resume() {
	w.mu.Lock()
	w.epoch, w.cancel = context.WithCancel(context.Background())
	w.mu.Unlock()
	w.gate.Unlock()
}

// opContext is the context of one operation: ctx, ended early by pause.
func (w *workload) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	w.mu.Lock()
	if w.epoch == nil {
		w.epoch, w.cancel = context.WithCancel(context.Background())
	}
	epoch := w.epoch
	w.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(epoch, cancel)
	return ctx, func() { stop(); cancel() }
}

// client is one user: a session (its header value, empty before the
// first write), a principal, a counter it writes under its own key.
type client struct {
	w   *workload
	n   int
	rng *rand.Rand
	// slots are the client's sessions (a user's browsers, say): each an
	// X-Session header value, empty before its first write.
	slots [4]string
	seq   int // the last value written, over every slot
}

// principal is slot's user; key the key its own writes go to.
func (cl *client) principal(slot int) string { return fmt.Sprintf("u%d.%d", cl.n, slot) }
func (cl *client) key(slot int) string       { return fmt.Sprintf("c%d.%d", cl.n, slot) }

// run does one operation per tick of the client's rate until ctx ends,
// each while the checker's gate is open.
func (cl *client) run(ctx context.Context) {
	procstat.Every(ctx, time.Duration(float64(time.Second)/cl.w.rate), func() {
		cl.w.gate.RLock()
		defer cl.w.gate.RUnlock()
		if ctx.Err() == nil {
			opCtx, done := cl.w.opContext(ctx)
			cl.one(opCtx)
			done()
		}
	})
}

// pick draws an operation from the mix.
func (cl *client) pick() string {
	total := 0
	for _, o := range mix {
		total += o.weight
	}
	x := cl.rng.IntN(total)
	for _, o := range mix {
		if x < o.weight {
			return o.name
		}
		x -= o.weight
	}
	return mix[0].name
}

// one does one operation through a random node and records what the
// cluster acknowledged.
func (cl *client) one(ctx context.Context) {
	node := cl.rng.IntN(len(cl.w.urls))
	base := cl.w.urls[node]
	lg := cl.w.ledger
	slot := cl.rng.IntN(len(cl.slots))
	sv := &cl.slots[slot]
	switch o := cl.pick(); {
	case o == "shared" && len(cl.w.shared) > 0:
		shared := cl.w.shared[cl.rng.IntN(len(cl.w.shared))]
		cl.seq++
		v := fmt.Sprintf("c%d:%d", cl.n, cl.seq)
		_, _, ok := cl.post(ctx, node, base+"/w?"+url.Values{"k": {"s"}, "v": {v}}.Encode(), shared)
		lg.count("shared", ok)
	case o == "login" && *sv != "":
		old := *sv
		nv, body, ok := cl.post(ctx, node, base+"/login?p="+cl.principal(slot), old)
		lg.count("login", ok)
		if !ok {
			lg.intent(idOf(old)) // renewed or not: its data may live on under an ID we do not learn
		}
		if ok && nv != "" && idOf(nv) != idOf(old) {
			if strings.HasPrefix(string(body), "existing") {
				lg.renewed(idOf(old), idOf(nv), cl.key(slot), node)
			} // else that node knew no such session: it ended nothing, and the client moves to a new one
			*sv = nv
		}
	case o == "logout" && *sv != "":
		_, body, ok := cl.post(ctx, node, base+"/logout", *sv)
		lg.count("logout", ok)
		if !ok {
			lg.intent(idOf(*sv))
		}
		if ok {
			if strings.HasPrefix(string(body), "existing") {
				lg.ended(idOf(*sv), node, "logout")
			} // else that node knew no such session: it ended nothing
			*sv = ""
		}
	case o == "destroy-principal":
		_, body, ok := cl.post(ctx, node, base+"/destroy-principal?p="+cl.principal(slot), "")
		lg.count("destroy-principal", ok)
		if !ok && *sv != "" {
			lg.intent(idOf(*sv)) // it may have been ended by a node that did not answer
		}
		var ids []string
		if ok && json.Unmarshal(body, &ids) == nil {
			for _, id := range ids {
				lg.ended(id, node, "destroy-principal")
				if *sv != "" && id == idOf(*sv) {
					*sv = ""
				}
			}
		}
	default:
		cl.seq++
		nv, _, ok := cl.post(ctx, node, base+"/w?"+url.Values{"k": {cl.key(slot)}, "v": {strconv.Itoa(cl.seq)}}.Encode(), *sv)
		switch {
		case !ok:
			lg.count("own", false)
			if *sv != "" {
				lg.failedWrite(idOf(*sv), cl.key(slot), cl.seq)
			}
		case nv != "" && (*sv == "" || idOf(nv) != idOf(*sv)):
			// A new session: the client had none, or this node knew
			// nothing of the one it had (a fork, its data stays there).
			*sv = nv
			lg.count("own", true)
			lg.acked(idOf(nv), cl.key(slot), cl.seq, node, true)
		default:
			if nv != "" {
				*sv = nv // a newer stamp
			}
			lg.count("own", true)
			lg.acked(idOf(*sv), cl.key(slot), cl.seq, node, false)
		}
	}
}

// post is post, written to the operations log (when there is one): when,
// which client and node, the path, the session before and after.
func (cl *client) post(ctx context.Context, node int, u, sv string) (string, []byte, bool) {
	nv, body, ok := post(ctx, u, sv)
	if w := cl.w.opsLog; w != nil {
		path := u[strings.Index(u[len("http://"):], "/")+len("http://"):]
		w.printf("%s c%d n%d %s %.12s -> %.12s ok=%v\n", time.Now().UTC().Format("15:04:05.000"), cl.n, node+1, path, idOrNone(sv), idOrNone(nv), ok)
	}
	return nv, body, ok
}

func idOrNone(v string) string {
	if v == "" {
		return "-"
	}
	return idOf(v)
}

// opsLog is the clients' log of every operation (DIR/ops.log), for
// finding out what led to a loss.
type opsLog struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *opsLog) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, a...)
}

// post sends a POST with the session header value sv (if any) and
// returns the answer's header value, its body, and whether it was 200 OK
// (the write acknowledged).
func post(ctx context.Context, u, sv string) (newValue string, body []byte, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", nil, false
	}
	if sv != "" {
		req.Header.Set(sessionHeader, sv)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", nil, false
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", nil, false
	}
	return resp.Header.Get(sessionHeader), body, true
}
