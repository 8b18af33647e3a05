package layers

import (
	"fmt"

	zmq "github.com/pebbe/zmq4"
	"github.com/sirupsen/logrus"
)

// ZAP status codes (RFC 27).
const (
	zapOK     = "200"
	zapDenied = "400"
	zapError  = "500"
)

// answerZAP answers the ZAP requests libzmq queued for the router's
// handshakes: a CURVE peer whose key Curve.Admit accepts gets 200 with its
// key as user id, which every request it sends then carries as metadata;
// any other gets 400 and its handshake fails.
func (r *Receiver) answerZAP(zap *zmq.Socket) {
	for {
		frames, err := zap.RecvMessageBytes(zmq.DONTWAIT)
		if err != nil {
			if !isEAGAIN(err) {
				r.log.WithError(err).Warn("receive ZAP request")
			}
			return
		}
		reply := r.zapVerdict(frames)
		if _, err := zap.SendMessage(reply); err != nil {
			r.log.WithError(err).Warn("answer ZAP request")
		}
	}
}

// zapVerdict decides one ZAP request and returns the reply frames.
func (r *Receiver) zapVerdict(frames [][]byte) []string {
	id := ""
	if len(frames) > 1 {
		id = string(frames[1])
	}
	answer := func(status, text, user string) []string {
		return []string{"1.0", id, status, text, user, ""}
	}
	// version, request id, domain, address, routing id, mechanism, then
	// the mechanism's credentials: for CURVE, the client's 32-byte key.
	if len(frames) < 6 || string(frames[0]) != "1.0" {
		r.log.WithField("frames", len(frames)).Error("malformed ZAP request")
		return answer(zapError, "malformed ZAP request", "")
	}
	address, mechanism := string(frames[3]), string(frames[5])
	if mechanism != "CURVE" || len(frames) != 7 || len(frames[6]) != 32 {
		return answer(zapDenied, "CURVE required", "")
	}
	peer := Peer{Key: zmq.Z85encode(string(frames[6])), Address: address}
	if admit := r.cfg.Curve.Admit; admit != nil {
		if err := admit(peer); err != nil {
			r.refused(Refusal{Cause: RefusedKey, Peer: peer, Reason: err.Error()})
			return answer(zapDenied, err.Error(), "")
		}
	}
	return answer(zapOK, "OK", peer.Key)
}

// reportHandshakes reports the failed handshakes the router's monitor
// queued. A key refused by Admit is reported by the ZAP handler, with the
// key; these are the handshakes that failed before any key was proven.
func (r *Receiver) reportHandshakes(mon *zmq.Socket) {
	for {
		ev, _, value, err := mon.RecvEvent(zmq.DONTWAIT)
		if err != nil {
			return
		}
		reason := "ZMTP handshake failed"
		switch ev {
		case zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
			reason, _ = protocolProblem(value)
		case zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
			reason = fmt.Sprintf("ZMTP handshake failed (errno %d)", value)
		}
		r.refused(Refusal{Cause: RefusedHandshake, Reason: reason})
	}
}

// refused hands a refusal to OnRefused, and logs it at debug level: the
// owner decides what is worth a warning.
func (r *Receiver) refused(f Refusal) {
	r.log.WithFields(logrus.Fields{"cause": f.Cause.String(), "key": f.Peer.Key, "address": f.Peer.Address}).
		Debug("peer refused: " + f.Reason)
	if r.cfg.OnRefused != nil {
		r.cfg.OnRefused(f)
	}
}
