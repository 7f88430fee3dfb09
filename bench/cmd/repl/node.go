package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
	rpprof "runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peersession/peersession"
	"github.com/peersession/peersession/bench/internal/node"
	rd "github.com/peersession/peersession/bench/internal/repldrive"
)

// recorder keeps the write-to-visible delays of sessions created on a peer.
type recorder struct {
	mu sync.Mutex // guards s
	s  []sample   // bounded by maxSamples
}

// sample is one session's arrival: its creation time (Unix nanoseconds,
// the writer's clock) and how long after that it became visible here.
type sample struct {
	created int64
	d       time.Duration
}

const maxSamples = 4 << 20

func (r *recorder) add(created time.Time, d time.Duration) {
	r.mu.Lock()
	if len(r.s) < maxSamples {
		r.s = append(r.s, sample{created.UnixNano(), d})
	}
	r.mu.Unlock()
}

// count returns how many sessions created at or after since (Unix
// nanoseconds; 0: all) were recorded.
func (r *recorder) count(since int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if since == 0 {
		return len(r.s)
	}
	n := 0
	for _, x := range r.s {
		if x.created >= since {
			n++
		}
	}
	return n
}

// take returns the delays of the sessions created at or after since (0:
// all) and forgets every sample.
func (r *recorder) take(since int64) []time.Duration {
	r.mu.Lock()
	s := r.s
	r.s = nil
	r.mu.Unlock()
	d := make([]time.Duration, 0, len(s))
	for _, x := range s {
		if x.created >= since {
			d = append(d, x.d)
		}
	}
	return d
}

// runNode is "repl node": a cluster node with a control endpoint.
func runNode(args []string) {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	name := fs.String("name", "a", "node name")
	var nf node.Flags
	nf.Register(fs, "")
	httpAddr := fs.String("http", "127.0.0.1:0", "control HTTP address")
	joinProfile := fs.String("join-cpuprofile", "", "write a CPU profile of the start (New to WaitReady) to this file")
	_ = fs.Parse(args)

	rec := &recorder{}
	cfg := peersession.Config{
		Cluster:             nf.Cluster("repl node", *name),
		Logger:              nf.Logger(),
		NotifyOnReplication: true,
		OnCreate: func(ev peersession.Event) {
			if ev.Remote {
				rec.add(ev.Created, time.Since(ev.Created))
			}
		},
	}
	if *joinProfile != "" {
		f, err := os.Create(*joinProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	t0 := time.Now()
	st := node.Start(cfg, 5*time.Minute)
	readyIn := time.Since(t0)
	if *joinProfile != "" {
		rpprof.StopCPUProfile()
	}

	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"ready_ms": float64(readyIn.Microseconds()) / 1e3, "sessions_at_ready": st.Len()})
	})
	// since (Unix nanoseconds) restricts /vis and /stats' visible_recorded
	// to sessions created at or after it: a key-update phase passes the
	// writer's start, so that only its probe sessions count, not the
	// sessions it created to update (nor sessions anti-entropy repairs).
	since := func(r *http.Request) int64 {
		v, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		return v
	}
	// /raw lists every recorded arrival, one "creation-ns delay-µs" line
	// each, for finding when in a phase the slow ones fell.
	mux.HandleFunc("/raw", func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, x := range rec.s {
			fmt.Fprintf(w, "%d %d\n", x.created, x.d.Microseconds())
		}
	})
	mux.HandleFunc("/vis", func(w http.ResponseWriter, r *http.Request) {
		reply(w, rd.FiguresOf(rec.take(since(r))))
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("gc") {
			runtime.GC()
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		reply(w, map[string]any{"heap_alloc": ms.HeapAlloc, "heap_inuse": ms.HeapInuse, "sys": ms.Sys, "store": st.Stats(), "visible_recorded": rec.count(since(r))})
	})
	node.Pprof(mux)
	var pool ownedPool // the sessions of kind "owned" (/pool)
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		num := func(k string, def int) int {
			if v, err := strconv.Atoi(q.Get(k)); err == nil {
				return v
			}
			return def
		}
		dur, err := time.ParseDuration(q.Get("dur"))
		if err != nil {
			dur = 3 * time.Second
		}
		opts := writeOpts{watch: q.Get("watch")}
		if q.Get("kind") == "owned" {
			if opts.tokens = pool.get(); len(opts.tokens) == 0 {
				http.Error(w, "kind=owned: no pool; call /pool first", http.StatusBadRequest)
				return
			}
		}
		res := write(st, q.Get("kind"), num("rate", 0), num("workers", 1), num("n", 0), num("size", 64), num("sessions", 1024), num("probe", 0), dur, opts)
		reply(w, res)
	})
	// /pool?sessions=N&size=B creates the sessions of the "owned" writes:
	// N that this node owns, each with one B-byte key.
	mux.HandleFunc("/pool", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("sessions"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		if n <= 0 || size <= 0 {
			http.Error(w, "/pool: want sessions and size, both positive", http.StatusBadRequest)
			return
		}
		created, err := pool.fill(st, *name, n, size, 30*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		reply(w, map[string]any{"created": created, "owned": n})
	})

	node.Serve(*httpAddr, &http.Server{Handler: mux})
	if err := st.Close(); err != nil {
		log.Printf("repl node %s: close: %v", *name, err)
	}
}

// write runs one writing phase on this node: kind "create" makes a new
// session per write (the peer times its arrival with OnCreate); "update"
// changes one key of one of `sessions` existing sessions per write. rate 0
// means as fast as `workers` goroutines go; n > 0 stops after n writes;
// every phase is bounded by dur. probe > 0 (kind "update" only) adds one
// goroutine that, while the writers run, creates a new session with one
// small key at probe per second: the peer's OnCreate hook times them, so
// their visibility is the replication lag under the update load (the
// driver asks the peer only for sessions created since StartNS). Kind
// "owned" updates key "v" of the /pool sessions (opts.tokens) with one of
// two size-byte values in turn, so that every write changes it; probes
// too. With opts.watch, Probes counts only the probes whose holders
// include that node (in partitioned mode, the only ones it sees arrive).
func write(st *peersession.Store, kind string, rate, workers, n, size, sessions, probe int, dur time.Duration, opts writeOpts) rd.WriteResult {
	ctx := context.Background()
	val := strings.Repeat("v", size)
	vals := [2]string{val, strings.Repeat("v", max(size-1, 0)) + "w"}
	tokens := opts.tokens
	if kind == "update" {
		for i := 0; i < sessions; i++ {
			s := st.NewSession(ctx)
			_ = s.Set("v", val)
			_ = s.Set("t", int64(0))
			t, err := st.Save(ctx, s)
			if err != nil {
				return rd.WriteResult{Errors: 1, FirstErr: err.Error()}
			}
			tokens = append(tokens, t)
		}
		// The timed phase starts once the peers hold these sessions, so
		// that the set-up's own backlog does not count against it.
		quiesce(st, 10*time.Second)
	}
	var mu sync.Mutex
	res := rd.WriteResult{}
	var lat []time.Duration
	start := time.Now()
	res.StartNS = start.UnixNano()
	deadline := start.Add(dur)
	stop := make(chan struct{}) // closed when the writers are done
	probeDone := make(chan struct{})
	probes, probeErrs := 0, 0 // the probe goroutine's until probeDone
	if (kind == "update" || kind == "owned") && probe > 0 {
		go func() {
			defer close(probeDone)
			for i := 0; ; i++ {
				at := start.Add(time.Duration(float64(i) / float64(probe) * float64(time.Second)))
				if d := time.Until(at); d > 0 {
					select {
					case <-time.After(d):
					case <-stop:
						return
					}
				}
				select {
				case <-stop:
					return
				default:
				}
				if time.Now().After(deadline) {
					return
				}
				s := st.NewSession(ctx)
				_ = s.Set("p", int64(i))
				if t, err := st.Save(ctx, s); err != nil {
					probeErrs++
				} else if opts.watch == "" || slices.Contains(st.Holders(t), opts.watch) {
					probes++
				}
			}
		}()
	} else {
		close(probeDone)
	}
	var wg sync.WaitGroup
	for k := 0; k < workers; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The writers share node A's process: keep their own work
			// small (latencies presized, two clock readings per write).
			want := n / workers
			if n == 0 && rate > 0 {
				want = int(float64(rate)*dur.Seconds())/workers + 1
			}
			my := make([]time.Duration, 0, min(max(want, 0), 1<<22))
			errs, done := 0, 0
			firstErr := ""
			for i := k; n == 0 || i < n; i += workers {
				t0 := time.Now()
				if rate > 0 {
					at := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
					if d := at.Sub(t0); d > 0 {
						time.Sleep(d)
						t0 = time.Now()
					}
				}
				if t0.After(deadline) {
					break
				}
				var err error
				switch kind {
				case "update":
					var s *peersession.Session
					if s, err = st.Load(ctx, tokens[i%len(tokens)]); err == nil {
						_ = s.Set("t", t0.UnixNano())
						_, err = st.Save(ctx, s)
					}
				case "owned":
					var s *peersession.Session
					if s, err = st.Load(ctx, tokens[i%len(tokens)]); err == nil {
						_ = s.Set("v", vals[(i/len(tokens))%2])
						_, err = st.Save(ctx, s)
					}
				default:
					s := st.NewSession(ctx)
					_ = s.Set("v", val)
					_, err = st.Save(ctx, s)
				}
				my = append(my, time.Since(t0))
				done++
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				}
			}
			mu.Lock()
			lat = append(lat, my...)
			res.Writes += done
			res.Errors += errs
			if res.FirstErr == "" {
				res.FirstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(stop)
	<-probeDone
	res.Probes, res.ProbeErrors = probes, probeErrs
	res.ElapsedMS = float64(el.Microseconds()) / 1e3
	res.Rate = float64(res.Writes) / el.Seconds()
	res.Save = rd.FiguresOf(lat)
	return res
}

// writeOpts are write's options beyond the rate and sizes.
type writeOpts struct {
	tokens []string // kind "owned": the sessions to update
	watch  string   // count only the probes this node holds
}

// quiesce waits (at most limit) until st has nothing queued for its peers,
// every record it sent was acknowledged, and (partitioned) no stray waits
// to be handed over.
func quiesce(st *peersession.Store, limit time.Duration) {
	for dl := time.Now().Add(limit); time.Now().Before(dl); time.Sleep(time.Millisecond) {
		rs := st.Stats().Replication
		if rs == nil {
			return
		}
		busy := rs.Strays > 0 // partitioned: copies still to hand over
		for _, p := range rs.Peers {
			busy = busy || p.Queued > 0 || p.Acked+p.Refused < p.Sent
		}
		if !busy {
			return
		}
	}
}
