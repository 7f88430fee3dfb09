package peersession

import (
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/peersession/peersession/internal/testlog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Log attribute names are stable and documented: every attribute key a
// log call of the library uses is in docs/logs.md's table, and every
// message names the package that logs it.
func TestLogAttributesAreTheDocumentedOnes(t *testing.T) {
	doc, err := os.ReadFile("docs/logs.md")
	require.NoError(t, err)
	documented := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	prefix := regexp.MustCompile(`^(peersession|cluster|replicate|persist)[ :]`)
	calls := 0
	for _, dir := range []string{".", "cluster", "replicate", "persist"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		require.NoError(t, err)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
			require.NoError(t, err)
			ast.Inspect(af, func(n ast.Node) bool {
				c, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := c.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				msgAt, ok := map[string]int{"Warn": 0, "Error": 0, "Info": 0, "Debug": 0, "Log": 2}[sel.Sel.Name]
				if !ok || len(c.Args) <= msgAt {
					return true
				}
				lit, ok := c.Args[msgAt].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				msg, _ := strconv.Unquote(lit.Value)
				if !strings.Contains(msg, ": ") && !strings.HasPrefix(msg, "cluster ") {
					return true // not a log message (http.Error's texts and such)
				}
				calls++
				assert.Regexp(t, prefix, msg, "%s: the message names its package", f)
				for i := msgAt + 1; i < len(c.Args); i += 2 {
					if k, ok := c.Args[i].(*ast.BasicLit); ok && k.Kind == token.STRING {
						key, _ := strconv.Unquote(k.Value)
						assert.True(t, documented[key], "%s: attribute %q of %q is not in docs/logs.md", f, key, msg)
					}
				}
				return true
			})
		}
	}
	assert.Greater(t, calls, 40, "the scan found the log calls")
}

// What a client causes is counted, not logged per request at info level
// or above: a hundred refused new sessions leave no such record.
func TestClientCausedFailuresAreNotLoggedPerRequest(t *testing.T) {
	var logs testlog.Buffer
	st := newTestStore(t, Config{AllowNew: func(*http.Request) bool { return false },
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	h := st.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, FromContext(r.Context()).Set("k", "v"))
	}))
	for range 100 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
		require.Equal(t, http.StatusTooManyRequests, rec.Code)
	}
	assert.Empty(t, logs.Lines())
	assert.Equal(t, int64(100), st.Stats().CommitErrors)
}

// Every record of a clustered store names its node.
func TestClusteredStoreRecordsNameTheirNode(t *testing.T) {
	var logs testlog.Buffer
	tc := newTestCluster(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	tc.startAll("a", "b")
	lines := logs.Lines()
	require.NotEmpty(t, lines)
	for _, l := range lines {
		if strings.Contains(l, "peersession:") || strings.Contains(l, "replicate:") {
			assert.Regexp(t, ` node=[ab]\b`, l)
		}
	}
}
