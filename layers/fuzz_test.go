package layers

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	zmq "github.com/pebbe/zmq4"

	"github.com/houssem/cmbs/config/cmbstest"
)

// FuzzCurveWire sends arbitrary frames to a CURVE receiver over an
// authenticated connection, each time followed by a well-formed request:
// whatever the frames were, the receiver must stay up, keep telling the
// handler who sent each request, and answer the well-formed one.
func FuzzCurveWire(f *testing.F) {
	goodID := bytes.Repeat([]byte{7}, requestIDLen)
	f.Add([]byte{}, goodID, []byte("payload"), uint8(3))
	f.Add([]byte("short"), []byte("x"), []byte{}, uint8(2))
	f.Add([]byte{}, goodID, []byte{}, uint8(2))
	f.Add([]byte("not a delimiter"), []byte{}, goodID, uint8(3))
	f.Add([]byte{}, []byte{}, []byte{}, uint8(3))
	f.Add(bytes.Repeat([]byte{0xff}, 300), goodID, []byte(`{"type":"deliver"}`), uint8(1))

	server, client := newKeys(f), newKeys(f)
	trusted := newKeySet(client.Public)
	r := startReceiver(f, ReceiverConfig{
		Curve:   &CurveServer{Keys: server, Admit: trusted.admit},
		Logger:  quietLogger(),
		Handler: whoSent,
	})
	zctx, err := zmq.NewContext()
	if err != nil {
		f.Fatal(err)
	}
	d, err := newSocket(zctx, zmq.DEALER)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		cmbstest.NoError(f, d.Close)
		cmbstest.NoError(f, zctx.Term)
	})
	if err := curveClient(d, client, server.Public); err != nil {
		f.Fatal(err)
	}
	if err := d.SetRcvtimeo(10 * time.Second); err != nil {
		f.Fatal(err)
	}
	if err := d.Connect(r.Endpoint()); err != nil {
		f.Fatal(err)
	}
	var seq uint64
	f.Fuzz(func(t *testing.T, a, b, c []byte, n uint8) {
		frames := [][]byte{a, b, c}[:1+n%3]
		if _, err := d.SendMessage(frames); err != nil {
			t.Fatalf("send fuzzed frames: %v", err)
		}
		seq++
		id := make([]byte, requestIDLen)
		copy(id, "fuzzprobe")
		binary.BigEndian.PutUint64(id[8:], seq)
		if _, err := d.SendMessage([]byte{}, id, []byte("probe")); err != nil {
			t.Fatalf("send probe: %v", err)
		}
		for {
			rep, err := d.RecvMessageBytes(0)
			if err != nil {
				t.Fatalf("no answer to the well-formed request after %q: %v", frames, err)
			}
			// Answers to the fuzzed frames, when they were requests, are
			// not this one.
			if len(rep) != 4 || !bytes.Equal(rep[1], id) {
				continue
			}
			if want := client.Public + ":probe"; string(rep[2]) != statusOK || string(rep[3]) != want {
				t.Fatalf("answer %q %q, want OK %q", rep[2], rep[3], want)
			}
			return
		}
	})
}

// whoSent answers with the sender's key and the payload, and fails a
// request that comes with no authenticated sender.
func whoSent(ctx context.Context, msg []byte) ([]byte, error) {
	p, ok := PeerFrom(ctx)
	if !ok || p.Key == "" {
		return nil, errors.New("a request without an authenticated sender")
	}
	return []byte(fmt.Sprintf("%s:%s", p.Key, msg)), nil
}
