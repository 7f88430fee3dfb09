package peersession

// One round of a peer's handoff worker (pushAll and split), against a
// fake peer: which records it is sent, and what is left owed.

import (
	"fmt"
	"testing"

	"github.com/peersession/peersession/replicate/model"
	"github.com/stretchr/testify/assert"
)

// fakePeer answers pushes: it refuses a batch holding any ID in refuses
// (all of them when refusesAll), and counts the records it was sent.
type fakePeer struct {
	refusesAll bool
	refuses    map[string]bool
	sent       int
	acked      map[string]bool
}

func (p *fakePeer) push(c pushChunk) (left int, answered, refused bool) {
	p.sent += len(c.ids)
	for _, id := range c.ids {
		if p.refusesAll || p.refuses[id] {
			return len(c.ids), true, true
		}
	}
	for _, id := range c.ids {
		p.acked[id] = true
	}
	return 0, true, false
}

// chunkOf is collect for the fake: a record per ID.
func chunkOf(ids []string) pushChunk {
	c := pushChunk{ids: ids, entries: make([]*entry, len(ids))}
	for _, id := range ids {
		c.recs = append(c.recs, model.Record{ID: id})
	}
	return c
}

func idsN(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%03d", i)
	}
	return ids
}

func noStop() error { return nil }

// A peer that refuses everything (at Config.MaxSessions, or its clock
// behind) is sent one chunk and its two halves a round, not the whole
// backlog three times: the rest waits for the next round, counted as left.
func TestRoundEndsAtAPeerRefusingBothHalvesOfAChunk(t *testing.T) {
	p := &fakePeer{refusesAll: true, acked: map[string]bool{}}
	left := pushAll(idsN(100), 8, chunkOf, p.push, noStop)
	assert.Equal(t, 100, left, "every session is left owed")
	assert.Equal(t, 16, p.sent, "one chunk of 8, then its two halves of 4")
}

// A peer that refuses a few sessions takes the others in the same round:
// a chunk it refused records of is split until the refused ones are
// apart (or both halves of a half are refused), and the round goes on to
// the next chunks.
func TestRoundGetsTheOthersPastAFewRefusedSessions(t *testing.T) {
	ids := idsN(40)
	refused := map[string]bool{ids[3]: true, ids[17]: true, ids[19]: true}
	p := &fakePeer{refuses: refused, acked: map[string]bool{}}
	left := pushAll(ids, 8, chunkOf, p.push, noStop)
	// s003 alone; s016-s019, whose halves s016-17 and s018-19 are both refused.
	assert.Equal(t, 1+4, left)
	for i, id := range ids {
		assert.Equal(t, i != 3 && (i < 16 || i > 19), p.acked[id], "%s acknowledged", id)
	}
}

// A chunk the peer does not answer for ends the round: the rest is left.
func TestRoundEndsAtAPeerNotAnswering(t *testing.T) {
	sent := 0
	silent := func(c pushChunk) (int, bool, bool) { sent += len(c.ids); return len(c.ids), false, false }
	assert.Equal(t, 100, pushAll(idsN(100), 8, chunkOf, silent, noStop))
	assert.Equal(t, 8, sent, "one chunk")
}
