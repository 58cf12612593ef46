package cache

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/maypok86/otter/v2"
)

// Defaults of Options.
const (
	DefaultMaxBytes      = 64 << 20
	DefaultMaxEntryBytes = 1 << 20
	DefaultRemoteTimeout = 50 * time.Millisecond
)

// Options configure a Cache. The zero value is usable: L1 only, default bounds.
type Options struct {
	MaxBytes      int64 // L1's bound on the encoded size of its entries; default DefaultMaxBytes
	MaxEntryBytes int   // an answer larger than this is not stored; default DefaultMaxEntryBytes
	// Remote is L2, shared by replicas; nil: L1 only.
	Remote Remote
	// RemoteTimeout bounds every L2 call (a lookup waits at most this long for Redis);
	// default DefaultRemoteTimeout.
	RemoteTimeout time.Duration
	Observer      Observer // nil: nothing is counted
	Log           *slog.Logger
	// SemanticMaxBytes bounds the semantic index (vectors of the answers a semantic
	// decision stored); default DefaultSemanticMaxBytes.
	SemanticMaxBytes int64
	// SemanticObserver counts what the semantic index does; nil: nothing is counted.
	SemanticObserver SemanticObserver
}

// Remote is a shared second level (Redis). A missing entry is (nil, nil).
type Remote interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Purge deletes the entries f selects and returns how many it deleted.
	Purge(ctx context.Context, f Filter) (int, error)
}

// Observer counts what the cache does (engine/telemetry implements it).
type Observer interface {
	CacheEvicted(reason string)
	CacheBytes(n int64)
	CacheRemoteError(op string)
}

// Cache is the two-level response cache. Safe for concurrent use.
type Cache struct {
	o   Options
	l1  *otter.Cache[string, *Entry]
	sem *SemanticIndex
}

// New returns a cache.
func New(o Options) *Cache {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxEntryBytes <= 0 {
		o.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if o.RemoteTimeout <= 0 {
		o.RemoteTimeout = DefaultRemoteTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{o: o, sem: NewSemanticIndex(o.SemanticMaxBytes, o.SemanticObserver)}
	c.l1 = otter.Must(&otter.Options[string, *Entry]{
		MaximumWeight: uint64(o.MaxBytes),
		Weigher:       func(k string, e *Entry) uint32 { return uint32(len(k) + e.weight()) },
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *Entry]) time.Duration {
			return time.Until(e.Value.expires)
		}),
		OnDeletion: func(e otter.DeletionEvent[string, *Entry]) {
			if o.Observer == nil {
				return
			}
			if e.WasEvicted() {
				reason := "size"
				if e.Cause == otter.CauseExpiration {
					reason = "expired"
				}
				o.Observer.CacheEvicted(reason)
			}
			o.Observer.CacheBytes(int64(c.l1.WeightedSize()))
		},
	})
	return c
}

// Semantic is the index of the semantic cache: the vectors of stored answers' last user
// turns, each naming its answer's Key in this cache.
func (c *Cache) Semantic() *SemanticIndex { return c.sem }

// MaxEntryBytes is the largest answer the cache stores, encoded.
func (c *Cache) MaxEntryBytes() int { return c.o.MaxEntryBytes }

// Get returns the entry under k: from L1, else from L2 (and then kept in L1 for the rest
// of its life). A failing or slow L2 is a miss.
func (c *Cache) Get(ctx context.Context, k Key) (*Entry, bool) {
	ks := k.String()
	if e, ok := c.l1.GetIfPresent(ks); ok {
		return e, true
	}
	if c.o.Remote == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.RemoteTimeout)
	defer cancel()
	b, err := c.o.Remote.Get(ctx, ks)
	if err != nil {
		c.remoteFailed("get", err)
		return nil, false
	}
	if b == nil {
		return nil, false
	}
	e, err := decodeEntry(b)
	if err != nil {
		c.remoteFailed("decode", err)
		return nil, false
	}
	// Kept in L1 for what is left of its life; one that has just expired is still
	// answered, as Redis handed it over.
	if e.expires = e.Stored.Add(e.TTL); time.Until(e.expires) > 0 {
		c.setL1(ks, e)
	}
	return e, true
}

// Put stores e under k for ttl in L1 and, off the caller's path, in L2. An entry larger
// than MaxEntryBytes is not stored (false).
func (c *Cache) Put(ctx context.Context, k Key, e *Entry, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	if e.Stored.IsZero() {
		e.Stored = time.Now()
	}
	e.TTL = ttl
	e.expires = e.Stored.Add(ttl)
	b, err := e.encode()
	if err != nil || len(b) > c.o.MaxEntryBytes {
		return false
	}
	ks := k.String()
	c.setL1(ks, e)
	if c.o.Remote != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*c.o.RemoteTimeout)
			defer cancel()
			if err := c.o.Remote.Set(ctx, ks, b, ttl); err != nil {
				c.remoteFailed("set", err)
			}
		}()
	}
	return true
}

// setL1 keeps e in L1 under ks, weighed again whenever a hit adds a rendering to it.
func (c *Cache) setL1(ks string, e *Entry) {
	e.grown = func(e *Entry) {
		// Only while ks still holds this very entry: a replaced or evicted one is not
		// brought back.
		c.l1.ComputeIfPresent(ks, func(old *Entry) (*Entry, otter.ComputeOp) {
			if old != e {
				return old, otter.CancelOp
			}
			return e, otter.WriteOp
		})
		c.observeBytes()
	}
	c.l1.Set(ks, e)
	c.observeBytes()
}

// Purged is what a Purge deleted: answers from this replica's memory (L1) and from the
// shared level (L2), and semantic vectors from this replica's index.
type Purged struct{ Memory, Shared, Vectors int }

// Purge deletes the entries f selects from L1 and L2, and their semantic vectors, and
// says how many it deleted from each. An L2 failure is returned: an operator asked for it.
func (c *Cache) Purge(ctx context.Context, f Filter) (Purged, error) {
	var p Purged
	for k := range c.l1.Keys() {
		if f.match(k) {
			if _, ok := c.l1.Invalidate(k); ok {
				p.Memory++
			}
		}
	}
	c.observeBytes()
	p.Vectors = c.sem.Purge(f) // the answers they name are gone
	var err error
	if c.o.Remote != nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		p.Shared, err = c.o.Remote.Purge(ctx, f)
	}
	return p, err
}

// Bytes is L1's size: the encoded bytes of its entries and their keys.
func (c *Cache) Bytes() int64 { return int64(c.l1.WeightedSize()) }

func (c *Cache) observeBytes() {
	if c.o.Observer != nil {
		c.o.Observer.CacheBytes(c.Bytes())
	}
}

func (c *Cache) remoteFailed(op string, err error) {
	if c.o.Observer != nil {
		c.o.Observer.CacheRemoteError(op)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		c.o.Log.Debug("cache L2 failed; served as a miss", "op", op, "err", err)
	}
}
