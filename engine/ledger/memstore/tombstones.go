package memstore

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// tombstones remembers settled reservation ids until a deadline, so a second Commit of
// one is refused (ledger.ErrAlreadySettled) instead of charged twice. A store under
// steady load holds one per request settled in the last TombstoneTTL (600,000 at
// 1,000 req/s and the default 10 minutes), so each is kept as a few pointer-free words:
// the id as 16 bytes in a map and in a queue ordered by deadline, which the garbage
// collector never has to scan.
type tombstones struct {
	until map[tombID]int64 // id -> deadline, Unix ns
	queue []tomb           // by deadline: each is now+TTL, so appended in order
	head  int              // queue[:head] has expired
	peak  int              // most ids held since until was last rebuilt
}

// tombID is a reservation id in 16 bytes: ledger.NewID's 32 hex digits decoded, or for
// an id of another shape the first 16 bytes of its SHA-256.
type tombID [16]byte

type tomb struct {
	id    tombID
	until int64
}

func newTombstones() tombstones { return tombstones{until: make(map[tombID]int64)} }

func tombIDOf(id string) tombID {
	var t tombID
	if len(id) == 2*len(t) {
		if _, err := hex.Decode(t[:], []byte(id)); err == nil {
			return t
		}
	}
	sum := sha256.Sum256([]byte(id))
	copy(t[:], sum[:])
	return t
}

func (ts *tombstones) len() int { return len(ts.until) }

func (ts *tombstones) has(id string) bool {
	_, ok := ts.until[tombIDOf(id)]
	return ok
}

// add remembers id until the deadline at.
func (ts *tombstones) add(id string, at time.Time) {
	t := tomb{id: tombIDOf(id), until: at.UnixNano()}
	ts.until[t.id] = t.until
	ts.queue = append(ts.queue, t)
	ts.peak = max(ts.peak, len(ts.until))
}

// remove forgets id at once (a Commit that could not be made durable is not settled).
// Its queue entry stays until its deadline; expire skips it then.
func (ts *tombstones) remove(id string) { delete(ts.until, tombIDOf(id)) }

// expire forgets the ids whose deadline is not after now. A clock set back only delays
// the expiry of the entries behind a later one in the queue.
func (ts *tombstones) expire(now time.Time) {
	n := now.UnixNano()
	for ts.head < len(ts.queue) && ts.queue[ts.head].until <= n {
		t := ts.queue[ts.head]
		// Only if the map still holds this entry's deadline: the id may have been
		// removed and settled again since, with a later deadline of its own.
		if at, ok := ts.until[t.id]; ok && at == t.until {
			delete(ts.until, t.id)
		}
		ts.head++
	}
	if ts.head > 0 && ts.head >= len(ts.queue)/2 {
		ts.queue = ts.queue[:copy(ts.queue, ts.queue[ts.head:])]
		ts.head = 0
	}
}

// compactBelow is the size under which the queue and map are not worth rebuilding.
const compactBelow = 4096

// compact gives back the memory of a burst that has expired: Go maps and slices never
// shrink by themselves, so a store that once held a peak's tombstones would keep that
// much memory for good. It rebuilds the map and the queue when they hold under a quarter
// of what they were sized for.
func (ts *tombstones) compact() {
	if n := len(ts.until); ts.peak > compactBelow && n < ts.peak/4 {
		m := make(map[tombID]int64, n)
		for id, at := range ts.until {
			m[id] = at
		}
		ts.until, ts.peak = m, n
	}
	if live := len(ts.queue) - ts.head; cap(ts.queue) > compactBelow && live < cap(ts.queue)/4 {
		ts.queue = append(make([]tomb, 0, 2*live), ts.queue[ts.head:]...)
		ts.head = 0
	}
}
