package prometheus_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/peersession/peersession"
	"github.com/peersession/peersession/adapters/internal/testcluster"
	psprom "github.com/peersession/peersession/adapters/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// documented returns the metric names in adapters/README.md's table, with
// their types and labels.
func documented(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `(peersession_[a-z_]+)` \\| (counter|gauge) \\| ([^|]*)\\|")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2] + " " + strings.TrimSpace(m[3])
	}
	require.NotEmpty(t, out, "no metrics table in adapters/README.md")
	return out
}

// scrape serves reg with promhttp and returns the metric families a
// scrape shows: name → "type labels".
func scrape(t *testing.T, reg *prometheus.Registry) map[string]string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)

	types := map[string]string{}
	labels := map[string][]string{}
	typeLine := regexp.MustCompile(`^# TYPE (\S+) (\S+)$`)
	sample := regexp.MustCompile(`^(peersession_[a-z_]+)(?:\{([^}]*)\})? `)
	for _, line := range strings.Split(string(body), "\n") {
		if m := typeLine.FindStringSubmatch(line); m != nil {
			types[m[1]] = m[2]
		}
		if m := sample.FindStringSubmatch(line); m != nil {
			for _, kv := range strings.Split(m[2], ",") {
				if k, _, ok := strings.Cut(kv, "="); ok && !slices.Contains(labels[m[1]], k) {
					labels[m[1]] = append(labels[m[1]], k)
				}
			}
		}
	}
	out := map[string]string{}
	for name, typ := range types {
		if !strings.HasPrefix(name, "peersession_") {
			continue
		}
		l := "—"
		if len(labels[name]) > 0 {
			l = "`" + strings.Join(labels[name], "`, `") + "`"
		}
		out[name] = typ + " " + l
	}
	return out
}

// A scrape of two clustered nodes' collector shows exactly the documented
// metrics, with the documented types and labels.
func TestScrapeShowsTheDocumentedMetrics(t *testing.T) {
	t.Parallel()
	a, b := testcluster.Pair(t, nil)
	s := a.NewSession(t.Context())
	require.NoError(t, s.Set("user", "alice"))
	_, err := a.Save(t.Context(), s)
	require.NoError(t, err)
	// Wait until A has a per-peer figure with an acknowledgement, so that
	// every metric is present.
	require.Eventually(t, func() bool {
		r := a.Stats().Replication
		return r != nil && r.Peers["b"].Acked > 0 && b.Stats().Sessions == 1
	}, testcluster.WaitFor, testcluster.Tick)

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(psprom.New(a)))
	assert.Equal(t, documented(t), scrape(t, reg))

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP peersession_sessions Sessions held by this node, including expired ones not yet swept.
# TYPE peersession_sessions gauge
peersession_sessions 1
`), "peersession_sessions"))
}

// The figures are the store's.
func TestFiguresFollowTheStore(t *testing.T) {
	t.Parallel()
	st, err := peersession.New(peersession.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	c := psprom.New(st)

	for range 3 {
		s := st.NewSession(t.Context())
		require.NoError(t, s.Set("k", "v"))
		tok, err := st.Save(t.Context(), s)
		require.NoError(t, err)
		if tok != "" {
			defer func() { require.NoError(t, st.Delete(t.Context(), tok)) }()
		}
	}
	want := `
# HELP peersession_sessions Sessions held by this node, including expired ones not yet swept.
# TYPE peersession_sessions gauge
peersession_sessions 3
# HELP peersession_sessions_created_total Sessions created on this node (and, with NotifyOnReplication, on its peers).
# TYPE peersession_sessions_created_total counter
peersession_sessions_created_total 3
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want),
		"peersession_sessions", "peersession_sessions_created_total"))
	// A single node has no members or replication metrics.
	assert.Equal(t, 19, testutil.CollectAndCount(c))
}
