package rapidreset

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// frames is what a client sends: the preface, then HEADERS and RST_STREAM
// pairs for streams 1, 3, ..., with a DATA frame of payload between (so
// payloads are skipped, not read as headers).
func frames(t testing.TB, pairs int, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&b, nil)
	for i := range pairs {
		id := uint32(2*i + 1)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x83}, EndHeaders: true})
		fr.WriteData(id, false, payload)
		fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}
	return b.Bytes()
}

// pipe is a Conn reading in from a client side, in chunks of at most
// chunk bytes.
func pipe(t *testing.T, in []byte, chunk int, lim Limit, hangUp bool) (*Conn, net.Conn) {
	srv, cli := net.Pipe()
	t.Cleanup(func() { srv.Close(); cli.Close() })
	go func() {
		for len(in) > 0 {
			k := min(chunk, len(in))
			if _, err := cli.Write(in[:k]); err != nil {
				return
			}
			in = in[k:]
		}
		if hangUp {
			cli.Close()
		}
	}()
	return NewConn(srv, lim, nil), cli
}

func TestTripsPastTheLimit(t *testing.T) {
	payload := bytes.Repeat([]byte{0x3}, 40) // looks like RST_STREAM headers if misread
	for _, chunk := range []int{1, 5, 9, 4096} {
		for _, tt := range []struct {
			pairs int
			trip  bool
		}{{10, false}, {11, true}} {
			c, _ := pipe(t, frames(t, tt.pairs, payload), chunk, Limit{Resets: 10, Window: time.Minute}, true)
			buf := make([]byte, 4096)
			var err error
			for err == nil {
				_, err = c.Read(buf)
			}
			if got := errors.Is(err, ErrTooManyResets); got != tt.trip {
				t.Errorf("chunks of %d bytes, %d resets: err %v; want tripped %v", chunk, tt.pairs, err, tt.trip)
			}
		}
	}
}

func TestGoAwayOnlyAtFrameBoundary(t *testing.T) {
	for _, half := range []bool{false, true} {
		c, cli := pipe(t, frames(t, 2, nil), 4096, Limit{Resets: 1, Window: time.Minute}, false)
		out := make(chan []byte)
		go func() { b, _ := io.ReadAll(cli); out <- b }()
		// A SETTINGS frame, or only its first 5 bytes.
		settings := []byte{0, 0, 0, 0x4, 0, 0, 0, 0, 0}
		if half {
			settings = settings[:5]
		}
		c.Write(settings)
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		got := <-out
		fr := http2.NewFramer(nil, bytes.NewReader(got[len(settings):]))
		f, err := fr.ReadFrame()
		switch {
		case half && len(got) != len(settings):
			t.Errorf("GOAWAY written after half a frame: %x", got)
		case !half && err != nil:
			t.Errorf("no GOAWAY at a frame boundary: %v (%x)", err, got)
		case !half:
			if g, ok := f.(*http2.GoAwayFrame); !ok || g.ErrCode != http2.ErrCodeEnhanceYourCalm || g.LastStreamID != 3 {
				t.Errorf("frame %v; want GOAWAY ENHANCE_YOUR_CALM, last stream 3", f)
			}
		}
	}
}

// The cost on the hot path: scanning what was read, and tracking what is
// written. No allocations.
func BenchmarkScan(b *testing.B) {
	in := frames(b, 1000, make([]byte, 200))[len(http2.ClientPreface):]
	c := NewConn(nil, Limit{Resets: 1 << 30, Window: time.Second}, nil)
	c.preface = 0
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		c.scan(in)
	}
}
