package prometheus_test

// dashboard.json, the Grafana dashboard over the collector's metrics: every
// metric its PromQL queries is one the collector describes and
// adapters/README.md documents, with the labels it has, counters read
// through rate() or increase() and gauges as they are.

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/peersession/peersession/adapters/internal/testcluster"
	psprom "github.com/peersession/peersession/adapters/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// grafanaDashboard is the part of Grafana's dashboard model the test reads.
type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"` // a string, or {"query": ...}
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *grafanaDSRef            `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr       string        `json:"expr"`
		RefID      string        `json:"refId"`
		Datasource *grafanaDSRef `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

type grafanaDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// described returns the names of the metrics the collector's Describe
// sends.
func described(t *testing.T) map[string]bool {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() {
		psprom.New(testcluster.Single(t)).Describe(ch)
		close(ch)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	out := map[string]bool{}
	for d := range ch {
		m := fqName.FindStringSubmatch(d.String())
		require.NotNil(t, m, "no fqName in %s", d)
		out[m[1]] = true
	}
	require.NotEmpty(t, out)
	return out
}

// loadDashboard parses dashboard.json and returns it with every panel,
// rows' nested ones included, in order.
func loadDashboard(t *testing.T) (grafanaDashboard, []grafanaPanel) {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(b, &d))
	var all []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, all
}

var (
	metricName = regexp.MustCompile(`\bpeersession_[a-z_]+\b`)
	matcher    = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"`)
	grouping   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	variable   = regexp.MustCompile(`\$\{?(\w+)`)
	callBefore = regexp.MustCompile(`(\w*)\(\s*$`)
)

// balanced reports whether expr's brackets pair up, outside quoted strings.
func balanced(expr string) bool {
	var stack []rune
	pair := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inQuote := false
	for i := 0; i < len(expr); i++ {
		c := rune(expr[i])
		switch {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case c == ')' || c == ']' || c == '}':
			if len(stack) == 0 || stack[len(stack)-1] != pair[c] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return !inQuote && len(stack) == 0
}

// exprProblems returns what is wrong with one PromQL expression of the
// dashboard: metrics the collector does not describe or the README does
// not document, labels the metric does not have, counters not read
// through rate() or increase(), gauges read through them (unless
// counters is false: for variable queries), unknown variables.
func exprProblems(expr string, desc map[string]bool, doc map[string]string, vars map[string]bool, counters bool) []string {
	var out []string
	if !balanced(expr) {
		out = append(out, "unbalanced brackets")
	}
	names := metricName.FindAllStringIndex(expr, -1)
	if len(names) == 0 {
		out = append(out, "queries no peersession metric")
	}
	groupable := map[string]bool{"job": true, "instance": true}
	for _, loc := range names {
		name := expr[loc[0]:loc[1]]
		if !desc[name] {
			out = append(out, name+": not in the collector's Describe")
		}
		typeLabels, ok := doc[name]
		if !ok {
			out = append(out, name+": not in adapters/README.md's table")
			continue
		}
		typ, labels, _ := strings.Cut(typeLabels, " ")
		allowed := map[string]bool{"job": true, "instance": true}
		for _, l := range strings.Split(labels, ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "—" && l != "" {
				allowed[l], groupable[l] = true, true
			}
		}
		if rest := expr[loc[1]:]; strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			for _, m := range matcher.FindAllStringSubmatch(rest[:end+1], -1) {
				if !allowed[m[1]] {
					out = append(out, name+": has no label "+m[1])
				}
			}
		}
		if !counters {
			continue
		}
		fn := ""
		if m := callBefore.FindStringSubmatch(expr[:loc[0]]); m != nil {
			fn = m[1]
		}
		overTime := fn == "rate" || fn == "irate" || fn == "increase"
		switch {
		case typ == "counter" && !overTime:
			out = append(out, name+": a counter read without rate() or increase()")
		case typ == "gauge" && overTime:
			out = append(out, name+": a gauge read through "+fn+"()")
		}
	}
	for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !groupable[l] {
				out = append(out, "groups by "+l+", a label none of its metrics has")
			}
		}
	}
	for _, v := range variable.FindAllStringSubmatch(expr, -1) {
		if !vars[v[1]] && !strings.HasPrefix(v[1], "__") {
			out = append(out, "unknown variable $"+v[1])
		}
	}
	return out
}

// Every metric the dashboard queries exists, with the labels it uses, and
// is read as its type requires; the panels are well formed.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	t.Parallel()
	desc, doc := described(t), documented(t)
	d, panels := loadDashboard(t)
	assert.NotEmpty(t, d.UID)
	assert.NotEmpty(t, d.Title)
	assert.Positive(t, d.SchemaVersion)

	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	require.True(t, vars["datasource"], "no datasource variable")
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if json.Unmarshal(v.Query, &q) != nil {
			var obj struct{ Query string }
			require.NoError(t, json.Unmarshal(v.Query, &obj), "variable %s", v.Name)
			q = obj.Query
		}
		assert.Empty(t, exprProblems(q, desc, doc, vars, false), "variable %s: %s", v.Name, q)
	}

	ids := map[int]bool{}
	exprs := 0
	for _, p := range panels {
		assert.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		assert.NotEmpty(t, p.Title, "panel %d", p.ID)
		assert.True(t, p.GridPos.W > 0 && p.GridPos.X >= 0 && p.GridPos.X+p.GridPos.W <= 24 && p.GridPos.H > 0,
			"panel %q: gridPos %+v", p.Title, p.GridPos)
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		assert.Equal(t, grafanaDSRef{Type: "prometheus", UID: "${datasource}"}, *p.Datasource, "panel %q", p.Title)
		assert.NotEmpty(t, p.Targets, "panel %q queries nothing", p.Title)
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			assert.False(t, refs[tg.RefID], "panel %q: refId %s twice", p.Title, tg.RefID)
			refs[tg.RefID] = true
			assert.Empty(t, exprProblems(tg.Expr, desc, doc, vars, true), "panel %q: %s", p.Title, tg.Expr)
			exprs++
		}
	}
	assert.Positive(t, exprs)
}

// The dashboard shows what an operator asks of a cluster: sessions and
// their bytes, tombstones, session lifecycle, commit errors, fetches,
// replication, per-peer queue, lag, refusals and responsiveness, members.
func TestDashboardCoversTheCluster(t *testing.T) {
	t.Parallel()
	_, panels := loadDashboard(t)
	queried := map[string]bool{}
	for _, p := range panels {
		for _, tg := range p.Targets {
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				queried[n] = true
			}
		}
	}
	for _, n := range []string{
		"peersession_sessions",
		"peersession_session_bytes",
		"peersession_tombstones",
		"peersession_sessions_created_total",
		"peersession_sessions_destroyed_total",
		"peersession_sessions_expired_total",
		"peersession_commit_errors_total",
		"peersession_fetches_total",
		"peersession_fetch_hits_total",
		"peersession_fetch_waits_total",
		"peersession_fetch_wait_hits_total",
		"peersession_replication_applied_total",
		"peersession_replication_rejected_total",
		"peersession_replication_repairs_total",
		"peersession_peer_queue_depth",
		"peersession_peer_ack_lag_seconds",
		"peersession_refused_total",
		"peersession_peer_refused_total",
		"peersession_peer_unresponsive",
		"peersession_members",
	} {
		assert.True(t, queried[n], "no panel queries %s", n)
	}
	// A metric the collector exports that no panel shows is worth a
	// look, not a failure: new metrics may come before their panel.
	var unshown []string
	for n := range documented(t) {
		if !queried[n] {
			unshown = append(unshown, n)
		}
	}
	slices.Sort(unshown)
	if len(unshown) > 0 {
		t.Logf("metrics no panel shows: %s", strings.Join(unshown, ", "))
	}
}

// The checks catch what they are for.
func TestDashboardChecksCatchMistakes(t *testing.T) {
	t.Parallel()
	desc, doc := described(t), documented(t)
	vars := map[string]bool{"job": true, "instance": true}
	for expr, want := range map[string]string{
		`peersession_sesions{job=~"$job"}`:                       "not in the collector's Describe",
		`peersession_sessions_created_total{job=~"$job"}`:        "a counter read without rate() or increase()",
		`rate(peersession_sessions[5m])`:                         "a gauge read through rate()",
		`peersession_peer_queue_depth{peers="b"}`:                "has no label peers",
		`sum by (peer) (peersession_sessions)`:                   "groups by peer",
		`rate(peersession_fetches_total{instance=~"$node"}[1m])`: "unknown variable $node",
		`rate(peersession_fetches_total[1m]`:                     "unbalanced brackets",
		`up{job="x"}`:                                            "queries no peersession metric",
	} {
		problems := exprProblems(expr, desc, doc, vars, true)
		assert.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }),
			"%s: want %q, got %q", expr, want, problems)
	}
	assert.Empty(t, exprProblems(`sum by (instance, peer) (rate(peersession_peer_sent_total{job=~"$job",peer!="a"}[$__rate_interval]))`, desc, doc, vars, true))
}
