package replicate

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecode checks that Decode never panics, and that whatever it accepts
// Encode accepts too and encodes back to an equal message.
func FuzzDecode(f *testing.F) {
	for _, tc := range codecSamples() {
		frame, err := Encode(tc.t, tc.msg)
		require.NoError(f, err)
		f.Add(frame)
	}
	hdr := []byte{FormatVersion, byte(MsgBatch)}
	for _, body := range [][]byte{
		{},
		{0xdd, 0xff, 0xff, 0xff, 0xff},
		{0xdf, 0xff, 0xff, 0xff, 0xff},
		{0xdb, 0xff, 0xff, 0xff, 0xff},
		{0xc6, 0xff, 0xff, 0xff, 0xff},
		{0x81, 0xa1, 'r', 0x91, 0x81, 0xa1, 'k', 0xdf, 0xff, 0xff, 0xff, 0xfe},
		{0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0},
		{0xd6, 0xff, 0, 0, 0, 0},
		{0xc1},
		{0x80, 0x00},
	} {
		f.Add(append(append([]byte{}, hdr...), body...))
	}
	f.Add([]byte{})
	f.Add([]byte{FormatVersion})
	f.Add([]byte{FormatVersion + 1, byte(MsgAck), 0x80})
	f.Add([]byte{FormatVersion, 0xff, 0x80})

	f.Fuzz(func(t *testing.T, frame []byte) {
		mt, msg, err := Decode(frame)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformed)
			require.Nil(t, msg)
			return
		}
		again, err := Encode(mt, msg)
		require.NoError(t, err, "Encode refused what Decode accepted")
		mt2, msg2, err := Decode(again)
		require.NoError(t, err, "Decode refused what Encode produced")
		require.Equal(t, mt, mt2)
		require.Equal(t, normMsg(msg), normMsg(msg2))
	})
}
