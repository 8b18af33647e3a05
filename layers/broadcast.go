package layers

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// Result is the outcome of one request within a [Client.Broadcast]. Err is nil
// exactly when the receiver acknowledged the message; otherwise it is an
// [*Error] explaining why not.
type Result struct {
	Endpoint string
	Reply    []byte
	Err      error
}

// Broadcast sends payload to every endpoint in parallel, at most
// BroadcastConcurrency at a time, and returns one Result per endpoint in the
// same order. It returns when every request has been acknowledged or has
// failed; a dead endpoint costs at most Attempts*Timeout and does not delay
// the others' delivery. It names no server keys, so a CURVE client's
// requests fail with KindAuth: send each with RequestTo instead.
func (c *Client) Broadcast(ctx context.Context, endpoints []string, payload []byte) []Result {
	results := make([]Result, len(endpoints))
	var g errgroup.Group
	g.SetLimit(c.cfg.BroadcastConcurrency)
	for i, ep := range endpoints {
		results[i].Endpoint = ep
		g.Go(func() error {
			results[i].Reply, results[i].Err = c.Request(ctx, ep, payload)
			return nil // a failure is one endpoint's Result, not the broadcast's
		})
	}
	_ = g.Wait() // nil: every request's error is in its Result
	return results
}
