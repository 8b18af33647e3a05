package api

import (
	"fmt"
	"sort"
)

// Delivery is the outcome of a send, kept in the message's
// cmbs.message.delivery attribute. It is written when the send is accepted
// (every destination pending) and kept current as destinations acknowledge,
// expire or refuse the message; State is DeliveryDone once every
// destination has a final status.
type Delivery struct {
	Layer    Layer  `json:"layer"`
	State    string `json:"state"`
	Started  string `json:"started"`
	Finished string `json:"finished,omitempty"`
	// Expires is when the destinations still pending stop being retried.
	Expires string `json:"expires,omitempty"`
	// Note explains a send that had no destination.
	Note string `json:"note,omitempty"`
	// Counts of the destinations by status.
	Pending   int `json:"pending"`
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	Expired   int `json:"expired"`
	// Destinations holds one outcome per destination member (for L1 to a
	// socket no known member has, the socket).
	Destinations map[string]Destination `json:"destinations"`
}

// Delivery states.
const (
	DeliveryPending = "pending"
	DeliveryDone    = "done"
)

// Destination statuses. Pending and Forwarded are on the way; the others
// are final.
const (
	// StatusPending: queued in the sender's outbox, not yet acknowledged.
	StatusPending = "pending"
	// StatusForwarded: a member on the route took custody of the message
	// and queued it towards the destination; the destination's receipt
	// will make it final.
	StatusForwarded = "forwarded"
	// StatusDelivered: the destination committed the message (and ran it,
	// if executable).
	StatusDelivered = "delivered"
	// StatusFailed: the destination, or a member on the route, refused the
	// message for a reason retrying cannot change.
	StatusFailed = "failed"
	// StatusExpired: the message expired before the destination
	// acknowledged it.
	StatusExpired = "expired"
)

// Final reports whether status ends a destination's delivery.
func Final(status string) bool {
	return status == StatusDelivered || status == StatusFailed || status == StatusExpired
}

// Destination is the outcome of a send at one destination member.
type Destination struct {
	Member string `json:"member"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Endpoint is the socket the message was sent to: the destination's,
	// or its next hop's.
	Endpoint string `json:"endpoint,omitempty"`
	// Via is the next hop when the destination is not a direct neighbour.
	Via       string `json:"via,omitempty"`
	Stored    bool   `json:"stored"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Executed  bool   `json:"executed,omitempty"`
	// Result is what the destination's execution returned (L1 replies).
	Result any `json:"result,omitempty"`
	// Path is the members the message crossed, the destination last.
	Path []string `json:"path,omitempty"`
	// Attempts counts the transmissions to the next hop so far.
	Attempts int `json:"attempts,omitempty"`
	// Updated is when the status last changed (RFC 3339).
	Updated string `json:"updated,omitempty"`
}

// Done reports whether the send has finished: every destination has a
// final status.
func (d *Delivery) Done() bool { return d != nil && d.State == DeliveryDone }

// Recount sets the counts and the state from the destinations' statuses.
// finished is recorded when the delivery becomes done.
func (d *Delivery) Recount(finished string) {
	d.Pending, d.Delivered, d.Failed, d.Expired = 0, 0, 0, 0
	for _, dest := range d.Destinations {
		switch dest.Status {
		case StatusDelivered:
			d.Delivered++
		case StatusFailed:
			d.Failed++
		case StatusExpired:
			d.Expired++
		default:
			d.Pending++
		}
	}
	if d.Pending == 0 {
		if d.State != DeliveryDone {
			d.Finished = finished
		}
		d.State = DeliveryDone
	} else {
		d.State, d.Finished = DeliveryPending, ""
	}
}

// SortedDestinations lists the destinations by member.
func (d *Delivery) SortedDestinations() []Destination {
	keys := make([]string, 0, len(d.Destinations))
	for k := range d.Destinations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Destination, 0, len(keys))
	for _, k := range keys {
		dest := d.Destinations[k]
		if dest.Member == "" {
			dest.Member = k
		}
		out = append(out, dest)
	}
	return out
}

// DeliveryFrom reads a delivery outcome from its generic JSON shape, as a
// message's attributes hold it (decoded JSON: maps, slices, float64s).
func DeliveryFrom(v any) (Delivery, error) {
	var d Delivery
	m, ok := v.(map[string]any)
	if !ok {
		return d, fmt.Errorf("want an object, got %s", describe(v))
	}
	r := reader{attrs: m}
	d.Layer = Layer(r.plain("layer"))
	d.State, d.Started, d.Finished = r.plain("state"), r.plain("started"), r.plain("finished")
	d.Expires, d.Note = r.plain("expires"), r.plain("note")
	d.Pending, d.Delivered = r.count("pending"), r.count("delivered")
	d.Failed, d.Expired = r.count("failed"), r.count("expired")
	if dests, ok := m["destinations"].(map[string]any); ok {
		d.Destinations = make(map[string]Destination, len(dests))
		for k, raw := range dests {
			dm, ok := raw.(map[string]any)
			if !ok {
				return d, fmt.Errorf("destinations.%s: want an object, got %s", k, describe(raw))
			}
			dr := reader{attrs: dm}
			dest := Destination{Member: dr.plain("member"), Status: dr.plain("status"), Reason: dr.plain("reason"),
				Endpoint: dr.plain("endpoint"), Via: dr.plain("via"), Stored: dr.flag("stored"), Duplicate: dr.flag("duplicate"),
				Executed: dr.flag("executed"), Result: dm["result"], Attempts: dr.count("attempts"), Updated: dr.plain("updated")}
			if p, ok := dm["path"].([]any); ok {
				dest.Path = make([]string, 0, len(p))
				for _, x := range p {
					if s, ok := x.(string); ok {
						dest.Path = append(dest.Path, s)
					}
				}
			}
			if dr.err != nil {
				return d, fmt.Errorf("destinations.%s: %w", k, dr.err)
			}
			d.Destinations[k] = dest
		}
	} else if v, ok := m["destinations"]; ok && v != nil {
		return d, fmt.Errorf("destinations: want an object, got %s", describe(v))
	}
	if r.err != nil {
		return d, r.err
	}
	return d, nil
}

// Generic returns the delivery in the generic JSON shape attributes hold,
// as DeliveryFrom reads it and encoding/json writes it.
func (d *Delivery) Generic() map[string]any {
	m := map[string]any{"layer": string(d.Layer), "state": d.State, "started": d.Started,
		"pending": float64(d.Pending), "delivered": float64(d.Delivered), "failed": float64(d.Failed), "expired": float64(d.Expired)}
	for k, v := range map[string]string{"finished": d.Finished, "expires": d.Expires, "note": d.Note} {
		if v != "" {
			m[k] = v
		}
	}
	dests := make(map[string]any, len(d.Destinations))
	for k, dest := range d.Destinations {
		dm := map[string]any{"member": dest.Member, "status": dest.Status, "stored": dest.Stored}
		for name, v := range map[string]string{"reason": dest.Reason, "endpoint": dest.Endpoint, "via": dest.Via, "updated": dest.Updated} {
			if v != "" {
				dm[name] = v
			}
		}
		if dest.Duplicate {
			dm["duplicate"] = true
		}
		if dest.Executed {
			dm["executed"] = true
		}
		if dest.Result != nil {
			dm["result"] = dest.Result
		}
		if len(dest.Path) > 0 {
			dm["path"] = anyList(dest.Path)
		}
		if dest.Attempts != 0 {
			dm["attempts"] = float64(dest.Attempts)
		}
		dests[k] = dm
	}
	m["destinations"] = dests
	return m
}
