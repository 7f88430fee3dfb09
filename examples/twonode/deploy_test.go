package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The Kubernetes example (deploy/kubernetes) names what this program
// serves: every flag it passes exists, the readiness probe's path is the
// one a node serves, and the ports it opens are the ones the flags bind.
func TestKubernetesManifestsMatchTheDemo(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/kubernetes/peersession.yaml")
	require.NoError(t, err)
	var docs []map[string]any
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			break
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	kinds := map[string]map[string]any{}
	for _, d := range docs {
		kinds[d["kind"].(string)+"/"+dig(d, "metadata", "name").(string)] = d
	}
	require.Contains(t, kinds, "StatefulSet/peersession")
	require.Contains(t, kinds, "Service/peersession-gossip")
	gossipSvc := kinds["Service/peersession-gossip"]
	assert.Equal(t, "None", dig(gossipSvc, "spec", "clusterIP"), "a headless Service: one name for every pod")
	assert.Equal(t, true, dig(gossipSvc, "spec", "publishNotReadyAddresses"), "pods find each other before they are ready")

	c := dig(kinds["StatefulSet/peersession"], "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	fs := flag.NewFlagSet("twonode", flag.ContinueOnError)
	registerFlags(fs)
	args := map[string]string{}
	for _, a := range c["args"].([]any) {
		name, val, _ := strings.Cut(strings.TrimLeft(a.(string), "-"), "=")
		require.NotNil(t, fs.Lookup(name), "the manifest passes -%s, which the program does not take", name)
		args[name] = val
	}
	for _, need := range []string{"node", "http", "gossip", "join", "key-file"} {
		assert.Contains(t, args, need)
	}
	require.NoError(t, fs.Parse(strings.Fields("-node=x -http=0.0.0.0:8080")), "the flags parse")

	ports := map[string]int{}
	for _, p := range c["ports"].([]any) {
		pm := p.(map[string]any)
		ports[pm["name"].(string)] = pm["containerPort"].(int)
	}
	assert.True(t, strings.HasSuffix(args["http"], ":8080") && ports["http"] == 8080, "-http binds the http port")
	assert.True(t, strings.HasSuffix(args["gossip"], ":7946") && ports["gossip-tcp"] == 7946 && ports["gossip-udp"] == 7946, "-gossip binds the gossip port")
	assert.Equal(t, "/readyz", dig(c, "readinessProbe", "httpGet", "path"), "the path a node serves its readiness on (demo.withReadiness)")
	assert.True(t, strings.HasPrefix(args["key-file"], "/etc/peersession/"), "the key comes from the Secret's mount")
	assert.Positive(t, dig(kinds["StatefulSet/peersession"], "spec", "template", "spec", "terminationGracePeriodSeconds"), "time for Close to flush")
}

// dig returns the value at path in nested YAML maps, or nil.
func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
