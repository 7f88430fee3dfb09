package wire

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden from the current encoder")

// goldenSamples are codecSamples and the frames whose fields came later
// (an Ack's refused count), each under a file name of its own.
func goldenSamples() []struct {
	name string
	t    MsgType
	msg  any
} {
	s := codecSamples()
	s = append(s, struct {
		name string
		t    MsgType
		msg  any
	}{"ack/refused", MsgAck, &Ack{Seq: 12, Refused: 3}})
	return s
}

// The wire format is permanent: a frame of every message type, as this
// format version writes it, is committed under testdata/golden, and every
// later build must still write those bytes for the same message and read
// them back into it. A change here is a new format version, not an edit
// (run with -update-golden only to add frames).
func TestGoldenFrames(t *testing.T) {
	for _, tc := range goldenSamples() {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", strings.ReplaceAll(tc.name, "/", "_")+".hex")
			frame, err := Encode(tc.t, tc.msg)
			require.NoError(t, err)
			if *updateGolden {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(hex.EncodeToString(frame)+"\n"), 0o644))
			}
			text, err := os.ReadFile(path)
			require.NoError(t, err, "no golden frame: run go test -run TestGoldenFrames -update-golden once, and commit it")
			golden, err := hex.DecodeString(strings.TrimSpace(string(text)))
			require.NoError(t, err)
			require.Equal(t, FormatVersion, golden[0], "a golden frame of format version %d", golden[0])
			require.Equal(t, hex.EncodeToString(golden), hex.EncodeToString(frame), "this build writes other bytes for the same message")
			mt, msg, err := Decode(golden)
			require.NoError(t, err, "this build cannot read a frame of its own format")
			require.Equal(t, tc.t, mt)
			require.Equal(t, normMsg(tc.msg), normMsg(msg))
		})
	}
}
