package layers

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// probeConcurrency bounds the handshakes one FindKey runs at once.
const probeConcurrency = 16

// What one probe found out about a key.
type probeResult uint8

const (
	probeUnknown probeResult = iota // nothing: no connection, or cut short
	probeWrong                      // the receiver does not hold the key
	probeRefused                    // the receiver holds it, and refused the client's key
	probeHeld                       // the receiver holds it: the handshake completed
)

// FindKey finds which of keys the Receiver at endpoint holds: it starts a
// CURVE handshake with each, at most 16 at once, each within the Client's
// Timeout, and returns the key one completed with. A member that knows a
// neighbour only by its socket learns its key this way, from the keys it
// trusts; nothing is sent but the handshake.
//
// When the receiver holds one of the keys but does not admit this client's
// key, that key is returned with a KindAuth error. Otherwise the error is
// KindAuth when the receiver answered and holds none of them, or
// KindUnreachable when no handshake got an answer.
func (c *Client) FindKey(ctx context.Context, endpoint string, keys []string) (string, error) {
	if c.cfg.Curve == nil {
		return "", errors.New("layers: FindKey needs a CURVE client")
	}
	if err := ValidateConnectEndpoint(endpoint); err != nil {
		return "", &Error{Endpoint: endpoint, Kind: KindInvalidEndpoint, Err: err}
	}
	if !c.enter() {
		return "", &Error{Endpoint: endpoint, Kind: KindClosed}
	}
	defer c.inflight.Done()
	pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	type outcome struct {
		key    string
		result probeResult
		status int
	}
	outcomes := make(chan outcome, len(keys))
	sem := make(chan struct{}, probeConcurrency)
	var wg sync.WaitGroup
	for _, key := range keys {
		if CheckKey(key) != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-pctx.Done():
				outcomes <- outcome{key: key}
				return
			}
			defer func() { <-sem }()
			r, status := c.probe(pctx, Target{Endpoint: endpoint, Key: key})
			outcomes <- outcome{key, r, status}
		}()
	}
	go func() {
		wg.Wait()
		close(outcomes)
	}()
	var refused *outcome
	found, wrong := "", 0
	for o := range outcomes {
		switch o.result {
		case probeHeld:
			if found == "" {
				found = o.key
				cancel() // the other probes can stop
			}
		case probeRefused:
			refused = &o
			cancel()
		case probeWrong:
			wrong++
		}
	}
	switch {
	case found != "":
		return found, nil
	case refused != nil:
		return refused.key, &Error{Endpoint: endpoint, Kind: KindAuth, Reason: fmt.Sprintf(
			"the receiver holds key %s but did not admit this client's CURVE key (ZAP status %d)", ShortKey(refused.key), refused.status)}
	case wrong > 0:
		return "", &Error{Endpoint: endpoint, Kind: KindAuth, Reason: fmt.Sprintf(
			"the receiver holds none of the %d CURVE keys tried", len(keys))}
	case ctx.Err() != nil:
		return "", &Error{Endpoint: endpoint, Kind: KindCanceled, Err: ctx.Err()}
	}
	return "", &Error{Endpoint: endpoint, Kind: KindUnreachable,
		Reason: fmt.Sprintf("no CURVE handshake got an answer within %v", c.cfg.Timeout)}
}

// probe runs one handshake with t and says how it went.
func (c *Client) probe(ctx context.Context, t Target) (probeResult, int) {
	cn, err := c.dial(t)
	if err != nil {
		return probeUnknown, 0
	}
	defer cn.close()
	for ctx.Err() == nil {
		select {
		case <-c.done:
			return probeUnknown, 0
		default:
		}
		if _, err := cn.poller.Poll(cancelCheckInterval); err != nil {
			return probeUnknown, 0
		}
		cn.drainEvents()
		switch {
		case cn.ready:
			return probeHeld, 0
		case cn.zapStatus != 0:
			return probeRefused, cn.zapStatus
		case cn.refused != "" || cn.failed > 0:
			// A security mismatch, or a CURVE server that could not open
			// the HELLO sealed for this key and hung up.
			return probeWrong, 0
		}
	}
	return probeUnknown, 0
}
