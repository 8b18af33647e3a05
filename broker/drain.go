package broker

import (
	"context"
	"fmt"
	"net/http"

	"github.com/houssem/cmbs/occi"
)

// Drain prepares the broker for a graceful termination: from its call on,
// a send answers 503 and starts no delivery, while the deliveries already
// running go on. Drain returns nil once they have all finished and
// recorded their outcome, or ctx's error when ctx ends first; the
// deliveries left then are stopped by Close. The receivers keep serving
// until Close, so members sending here are still answered.
//
// Drain may be called more than once; a broker never accepts sends again
// after it.
func (b *Broker) Drain(ctx context.Context) error {
	b.mu.Lock()
	b.draining = true
	b.mu.Unlock()
	// No wg.Add can happen any more (background refuses while draining),
	// so waiting here does not race a new delivery.
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: deliveries still running: %w", context.Cause(ctx))
	}
}

// refuseWhileDraining is the answer to a send once Drain has been called.
func (b *Broker) refuseWhileDraining() error {
	b.mu.Lock()
	draining := b.draining
	b.mu.Unlock()
	if !draining {
		return nil
	}
	return &occi.Error{Status: http.StatusServiceUnavailable, Field: "action",
		Detail: "this member is terminating: it accepts no new sends; send through another member"}
}
