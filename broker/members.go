package broker

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/houssem/cmbs/occi"
	"github.com/houssem/cmbs/store"
)

// memberTable keeps the members this server knows in memory, so that
// routing a message costs no store query. It reloads on the next read
// after any member document changes, which it learns from the store's
// change feed and from the broker's own writes.
type memberTable struct {
	st  store.Store
	log logrus.FieldLogger

	mu   sync.Mutex
	snap *members // nil when it must be read again
	gen  uint64   // counts invalidations, so a slow load cannot install stale data
}

// members is one reading of the member table.
type members struct {
	local  *member
	remote []*member // ordered by id
	byID   map[string]*member
	// byKey finds the member a public key speaks for.
	byKey map[string]*member
}

// get returns the current members.
func (t *memberTable) get(ctx context.Context) (*members, error) {
	t.mu.Lock()
	if s := t.snap; s != nil {
		t.mu.Unlock()
		return s, nil
	}
	gen := t.gen
	t.mu.Unlock()
	ents, err := occi.FindEntitiesAt(ctx, t.st, MemberLocation, MemberKind)
	if err != nil {
		return nil, err
	}
	s := &members{byID: make(map[string]*member, len(ents)), byKey: map[string]*member{}}
	for _, e := range ents {
		m, err := decodeMember(e)
		if err != nil {
			t.log.WithError(err).WithField("member", e.Location).Warn("member with unreadable attributes left out of routing")
			continue
		}
		s.byID[m.ID] = &m
		if m.PublicKey != "" {
			s.byKey[m.PublicKey] = &m
		}
		if m.Local {
			s.local = &m
		} else {
			s.remote = append(s.remote, &m)
		}
	}
	slices.SortFunc(s.remote, func(a, b *member) int { return strings.Compare(a.ID, b.ID) })
	t.mu.Lock()
	if t.gen == gen {
		t.snap = s
	}
	t.mu.Unlock()
	return s, nil
}

// invalidate makes the next get read the store.
func (t *memberTable) invalidate() {
	t.mu.Lock()
	t.snap = nil
	t.gen++
	t.mu.Unlock()
}

// follow invalidates the table on every change to a member document until
// ctx ends, watching again after a broken feed.
func (t *memberTable) follow(ctx context.Context) {
	const pause = time.Second
	for ctx.Err() == nil {
		ch, err := t.st.Watch(ctx)
		if err != nil {
			t.log.WithError(err).Warn("member table: cannot follow the change feed; retrying")
		} else {
			// Changes made before the feed opened are not on it.
			t.invalidate()
			for c := range ch {
				if strings.HasPrefix(c.ID, MemberLocation) {
					t.invalidate()
				}
			}
		}
		t.invalidate()
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// bySocket finds a remote member with a layer on socket.
func (s *members) bySocket(socket string) *member {
	for _, m := range s.remote {
		for _, ep := range m.Sockets {
			if ep == socket {
				return m
			}
		}
	}
	return nil
}

// remoteByL1 finds the remote member whose L1 socket is socket.
func (s *members) remoteByL1(socket string) *member {
	for _, m := range s.remote {
		if m.Sockets[L1] == socket {
			return m
		}
	}
	return nil
}
