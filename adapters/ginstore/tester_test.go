package ginstore_test

// gin-contrib/sessions' own store tests (its tester package, which every
// gin-contrib store runs: cookie, memstore, redis, ...), run against
// ginstore on a single node and on two clustered nodes behind a
// round-robin balancer, each request on the node after the previous
// request's.

import (
	"net/http"
	"sync"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/tester"
	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
	"github.com/peersession/peersession/adapters/ginstore"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	"github.com/stretchr/testify/assert"
)

func init() { gin.SetMode(gin.TestMode) }

// singleNode is a tester store factory: a ginstore over a single-node
// peersession store.
func singleNode(t *testing.T) sessions.Store {
	return ginstore.New(testcluster.Single(t))
}

// twoNodes is a tester store factory: a balancer over a ginstore on each
// of two clustered nodes, which checks at the end of the test that both
// nodes served requests.
func twoNodes(t *testing.T) sessions.Store {
	a, b := testcluster.Pair(t, nil)
	bal := &balancer{stores: []*ginstore.Store{ginstore.New(a), ginstore.New(b)}, node: map[*http.Request]int{}}
	t.Cleanup(func() {
		served := bal.served()
		assert.Positive(t, served[0], "no request reached node a")
		assert.Positive(t, served[1], "no request reached node b")
	})
	return bal
}

// balancer is a gin-contrib sessions.Store in front of one ginstore on
// each node, as a load balancer that is not sticky in front of the app's
// instances: each new request goes to the node after the previous new
// request's, and stays there for all its sessions.
type balancer struct {
	stores []*ginstore.Store

	mu   sync.Mutex
	next int
	node map[*http.Request]int // the node each request went to (which also keeps requests apart: none is freed and its address reused)
}

var _ sessions.Store = (*balancer)(nil)

// of returns the store of the node that serves r.
func (b *balancer) of(r *http.Request) *ginstore.Store {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.node[r]
	if !ok {
		n = b.next
		b.next = (b.next + 1) % len(b.stores)
		b.node[r] = n
	}
	return b.stores[n]
}

// served returns how many requests each node served.
func (b *balancer) served() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]int, len(b.stores))
	for _, n := range b.node {
		out[n]++
	}
	return out
}

func (b *balancer) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return b.of(r).Get(r, name)
}

func (b *balancer) New(r *http.Request, name string) (*gsessions.Session, error) {
	return b.of(r).New(r, name)
}

func (b *balancer) Save(r *http.Request, w http.ResponseWriter, s *gsessions.Session) error {
	return b.of(r).Save(r, w, s)
}

// Options sets the options on every node, as each instance of an app
// would at start-up.
func (b *balancer) Options(o sessions.Options) {
	for _, s := range b.stores {
		s.Options(o)
	}
}

// runTester runs one of gin-contrib's tester functions on a single node
// and on two nodes. F is the tester's factory type, unexported, which
// the function's type gives.
func runTester[F ~func(*testing.T) sessions.Store](t *testing.T, test func(*testing.T, F)) {
	t.Parallel()
	t.Run("single node", func(t *testing.T) {
		t.Parallel()
		test(t, singleNode)
	})
	t.Run("two nodes", func(t *testing.T) {
		t.Parallel()
		test(t, twoNodes)
	})
}

func TestSessionGetSet(t *testing.T)    { runTester(t, tester.GetSet) }
func TestSessionDeleteKey(t *testing.T) { runTester(t, tester.DeleteKey) }
func TestSessionFlashes(t *testing.T)   { runTester(t, tester.Flashes) }
func TestSessionClear(t *testing.T)     { runTester(t, tester.Clear) }
func TestSessionOptions(t *testing.T)   { runTester(t, tester.Options) }
func TestSessionMany(t *testing.T)      { runTester(t, tester.Many) }
