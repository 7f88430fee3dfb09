package scsstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/peersession/peersession/adapters/internal/testcluster"
	"github.com/peersession/peersession/adapters/scsstore"
)

// BenchmarkCommitTwoNodes prices Commit's wait for the peers on a
// two-node cluster on loopback: "scsstore" is Commit as scs calls it
// (it returns once the peer holds the change); "no-wait" is the same save
// through peersession without that wait (Async: the peer gets it later).
// bench/NOTES.md and adapters/README.md quote the medians.
func BenchmarkCommitTwoNodes(b *testing.B) {
	pa, _ := testcluster.Pair(b, nil)
	sa := scsstore.New(pa)
	ctx := context.Background()
	data := make([]byte, 200)
	expiry := time.Now().Add(time.Hour)
	token := func() string {
		var k [32]byte
		_, _ = rand.Read(k[:])
		return base64.RawURLEncoding.EncodeToString(k[:])
	}
	b.Run("scsstore", func(b *testing.B) {
		tok := token()
		for b.Loop() {
			if err := sa.CommitCtx(ctx, tok, data, expiry); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("no-wait", func(b *testing.B) {
		tok := token()
		for b.Loop() {
			ps, err := pa.LoadOrCreate(ctx, tok)
			if err != nil {
				b.Fatal(err)
			}
			if err := ps.Set("_scs", data); err != nil {
				b.Fatal(err)
			}
			if _, err := pa.Save(ctx, ps); err != nil {
				b.Fatal(err)
			}
		}
	})
}
