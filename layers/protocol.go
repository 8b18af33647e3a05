package layers

import (
	"encoding/binary"
	"fmt"
)

// Reply status frames. They are short ASCII words rather than a byte code so
// that a packet capture of the layer traffic stays readable.
const (
	statusOK   = "OK"
	statusErr  = "ERR"
	statusBusy = "BUSY"
	statusBad  = "BAD"
)

// requestIDLen is the size of the correlation frame: an 8-byte per-client
// nonce followed by an 8-byte per-attempt sequence number.
const requestIDLen = 16

// requestID builds the correlation frame for one attempt.
func requestID(nonce [8]byte, seq uint64) []byte {
	id := make([]byte, requestIDLen)
	copy(id, nonce[:])
	binary.BigEndian.PutUint64(id[8:], seq)
	return id
}

// splitEnvelope separates the routing envelope from the body at the first
// empty delimiter frame. ok is false when there is no delimiter or no identity
// frame before it, in which case the sender cannot be answered.
func splitEnvelope(frames [][]byte) (envelope, body [][]byte, ok bool) {
	for i, f := range frames {
		if len(f) == 0 {
			if i == 0 {
				return nil, nil, false
			}
			return frames[:i], frames[i+1:], true
		}
	}
	return nil, nil, false
}

// reply is a decoded reply body as seen by a DEALER.
type reply struct {
	id     []byte
	status string
	body   []byte
}

// parseReply decodes the frames a DEALER receives: "", id, status, body.
func parseReply(frames [][]byte) (reply, error) {
	if len(frames) != 4 {
		return reply{}, fmt.Errorf("reply has %d frames, want 4", len(frames))
	}
	if len(frames[0]) != 0 {
		return reply{}, fmt.Errorf("reply does not start with an empty delimiter frame")
	}
	if len(frames[1]) != requestIDLen {
		return reply{}, fmt.Errorf("reply id is %d bytes, want %d", len(frames[1]), requestIDLen)
	}
	return reply{id: frames[1], status: string(frames[2]), body: frames[3]}, nil
}
