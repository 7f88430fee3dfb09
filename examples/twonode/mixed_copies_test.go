package main

import (
	"fmt"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Mixed versions with partitioned mode (-copies), black-box: the previous
// release has no partitioned mode, and reads the metadata of a node in it
// as malformed. A cluster cannot be switched to partitioned mode (or
// back) one node at a time: a node in the other mode is refused, its
// start fails saying why, and the cluster it tried to join goes on with
// every session it had. docs/persistence.md ("Upgrades") gives the way:
// a full restart with the new setting, DataDir keeping the sessions.

// mixedLogins logs n users in on c's nodes in turn and returns the
// logins acknowledged (every one must be).
func mixedLogins(t *testing.T, c *mixedCluster, n int) []ackedWrite {
	var acked []ackedWrite
	nodes := c.nodes()
	for i := range n {
		node := nodes[i%len(nodes)]
		user := fmt.Sprintf("u%03d", i)
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		require.True(t, login(node, jar, user), "login %s on %s", user, node.Name)
		acked = append(acked, ackedWrite{user: user, on: node.Name, jar: jar})
	}
	return acked
}

// joinOdd starts node name on bin with args (and -copies copies) joining
// c, and requires that it stops before it is ready, saying why (want).
func joinOdd(t *testing.T, c *mixedCluster, name, bin string, copies int, want string) {
	args := []string{"-http", "127.0.0.1:0", "-gossip", loopbackAddr(t), "-join", strings.Join(c.gossip, ","),
		"-key-file", c.keyFile, "-consistency", "sync"}
	if copies > 0 {
		args = append(args, "-copies", fmt.Sprint(copies))
	}
	p, err := launchNode(t, name, nodeOptions{Bin: bin, Args: args})
	require.Error(t, err, "a node in the other mode became ready")
	assert.Contains(t, err.Error(), "exited before it was ready")
	assert.Contains(t, p.Output(), want)
}

// A node of this build in partitioned mode joins a cluster of the
// previous release: it is refused (the seeds' metadata has no Copies: 0,
// and this node has 2), exits with the reason, and the old cluster keeps
// every session and its three members.
func TestPartitionedNodeJoiningThePreviousReleaseIsRefused(t *testing.T) {
	commit := previousRelease(t)
	oldBin := buildDemo(t, previousReleaseTree(t, commit))
	newBin := demoBinary(t)

	c := startMixedCluster(t, oldBin)
	acked := mixedLogins(t, c, 30)
	joinOdd(t, c, "p", newBin, 2, "has ClusterConfig.Copies 0 and this node 2: give every node the same ClusterConfig.Copies")
	c.requireJoined(t)
	c.requireEverywhere(t, acked)
}

// A node of the previous release joins a cluster of this build in
// partitioned mode: the partitioned nodes refuse it (its metadata has no
// Copies: 0) and never take it for a peer; they keep their three members
// and every session. The previous release, for its part, reads their
// metadata as malformed and ignores them: it becomes ready alone, and
// what it is sent stays there (with Async; with Sync it refuses every
// write, having no peer). That is why such a mix must never be
// deployed (docs/persistence.md, "Upgrades"): the test pins down that
// it cannot corrupt the partitioned side, and what the logs say.
func TestPreviousReleaseJoiningAPartitionedClusterIsNeverItsPeer(t *testing.T) {
	commit := previousRelease(t)
	oldBin := buildDemo(t, previousReleaseTree(t, commit))
	newBin := demoBinary(t)

	c := startMixedCluster(t, newBin, "-copies", "2")
	acked := mixedLogins(t, c, 30)
	o := startNode(t, "o", nodeOptions{Bin: oldBin, Args: []string{"-http", "127.0.0.1:0", "-gossip", loopbackAddr(t),
		"-join", strings.Join(c.gossip, ","), "-key-file", c.keyFile, "-consistency", "async"}}) // Sync would refuse every write: no peer
	waitUntil(t, 60*time.Second, func() (bool, string) {
		return strings.Contains(o.Output(), "ignoring member with bad metadata"), "no such warning yet"
	}, "the previous release did not say it ignores the partitioned nodes")
	for _, n := range c.nodes() {
		waitUntil(t, 60*time.Second, func() (bool, string) {
			return strings.Contains(n.Output(), "refused a member with another Copies"), "no such warning yet"
		}, "node %s did not say it refuses the node of the previous release", n.Name)
	}
	requireMembers(t, o, "o")
	c.requireJoined(t)

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	require.True(t, login(o, jar, "alone"), "the lone node took no write")
	for _, n := range c.nodes() {
		assert.NotEqual(t, "alone", cartUser(n, jar), "a session of the lone node reached %s", n.Name)
	}
	c.requireEverywhere(t, acked)
}
