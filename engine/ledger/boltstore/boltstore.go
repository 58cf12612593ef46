// Package boltstore is the single-replica ledger.Store: decisions are made in memory by
// memstore (so Reserve never touches the disk) and every Commit is written to one bbolt
// file in an ACID transaction before it returns, so a restart loses no committed spend.
//
// Single process only: bbolt takes an exclusive lock on the file, so a second process
// (or a second Open in this one) fails after Options.OpenTimeout. Reservations and
// rate-limit windows live in memory only; after a restart there are no in-flight
// requests left to hold reservations for, and per-minute counters are not worth an fsync.
package boltstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/ledger/memstore"
)

var (
	bucketBudgets = []byte("budgets")
	bucketMeta    = []byte("meta")
	keyVersion    = []byte("version")
)

const schemaVersion = "1"

// Options configure a Store. The zero value is usable.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TombstoneTTL: see memstore.Options.
	TombstoneTTL time.Duration
	// Retention: how long a budget period stays in the file after it ends (default 400
	// days); older periods are deleted at Open and then hourly.
	Retention time.Duration
	// Batching selects how commits become write transactions (default GroupCommit).
	Batching Batching
	// MaxBatchDelay is bbolt's DB.MaxBatchDelay for Batching == BoltBatch (default
	// 2ms; bbolt's own default is 10ms). A lone Commit waits this long plus one fsync.
	MaxBatchDelay time.Duration
	// OpenTimeout: how long Open waits for the file lock (default 1s).
	OpenTimeout time.Duration
}

// Batching is how commits are turned into bbolt write transactions. bbolt has one
// writer at a time and fsyncs every transaction, so one transaction per commit caps a
// replica at one commit per fsync.
type Batching int

const (
	// GroupCommit (default): one writer goroutine; each transaction takes every commit
	// queued while the previous one was being written. A lone commit costs one fsync
	// and no added delay; under load, commits share fsyncs.
	GroupCommit Batching = iota
	// BoltBatch uses bbolt's DB.Batch: commits arriving within MaxBatchDelay share a
	// transaction, but a lone commit always waits MaxBatchDelay first.
	BoltBatch
	// NoBatch: every commit is its own transaction and fsync.
	NoBatch
)

// Store is the bbolt-backed ledger.Store. All ledger.Store methods come from the
// embedded memstore engine.
type Store struct {
	*memstore.Store
	db *bolt.DB
	p  *persister
}

var _ ledger.Store = (*Store)(nil)

// Open opens (creating if needed) the ledger file at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retention <= 0 {
		opts.Retention = 400 * 24 * time.Hour
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = time.Second
	}
	if opts.MaxBatchDelay <= 0 {
		opts.MaxBatchDelay = 2 * time.Millisecond
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout})
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	db.MaxBatchDelay = opts.MaxBatchDelay
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyVersion); v != nil && string(v) != schemaVersion {
			return fmt.Errorf("unsupported ledger schema version %q", v)
		}
		if err := meta.Put(keyVersion, []byte(schemaVersion)); err != nil {
			return err
		}
		_, err = tx.CreateBucketIfNotExists(bucketBudgets)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ledger: init %s: %w", path, err)
	}
	p := &persister{db: db, mode: opts.Batching, now: opts.Now, retention: opts.Retention,
		queue: make(chan *applyReq, 4096), done: make(chan struct{})}
	if p.mode == GroupCommit {
		go p.writer()
	} else {
		close(p.done)
	}
	if err := p.prune(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ledger: prune %s: %w", path, err)
	}
	mem := memstore.New(memstore.Options{Now: opts.Now, TombstoneTTL: opts.TombstoneTTL, Persister: p})
	return &Store{Store: mem, db: db, p: p}, nil
}

// Close closes the store and the file. Calls racing with Close may fail with
// ledger.ErrClosed or ledger.ErrStoreUnavailable; a Commit that returned nil is durable.
func (s *Store) Close() error {
	_ = s.Store.Close()
	s.p.closeOnce.Do(func() {
		s.p.qmu.Lock()
		s.p.closed = true
		close(s.p.queue)
		s.p.qmu.Unlock()
	})
	<-s.p.done
	return s.db.Close()
}

// Path is the file's path.
func (s *Store) Path() string { return s.db.Path() }

type persister struct {
	db        *bolt.DB
	mode      Batching
	now       func() time.Time
	retention time.Duration

	queue     chan *applyReq // GroupCommit
	done      chan struct{}  // closed when the writer exits
	closeOnce sync.Once
	qmu       sync.RWMutex // held (read) while sending to queue, so Close cannot race a send
	closed    bool

	mu        sync.Mutex
	lastPrune time.Time
}

func decode(v []byte) (memstore.Record, error) {
	var r memstore.Record
	err := json.Unmarshal(v, &r)
	return r, err
}

func (p *persister) Load(keys []string) (map[string]memstore.Record, error) {
	out := make(map[string]memstore.Record, len(keys))
	err := p.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBudgets)
		for _, k := range keys {
			v := b.Get([]byte(k))
			if v == nil {
				continue
			}
			r, err := decode(v)
			if err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			out[k] = r
		}
		return nil
	})
	return out, err
}

type applyReq struct {
	deltas []memstore.Delta
	err    chan error
}

// writer is the GroupCommit loop: it takes one request, then everything else already
// queued, and writes them all in one transaction.
func (p *persister) writer() {
	defer close(p.done)
	for first := range p.queue {
		batch := []*applyReq{first}
	drain:
		for len(batch) < 4096 {
			select {
			case r, ok := <-p.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		var all []memstore.Delta
		for _, r := range batch {
			all = append(all, r.deltas...)
		}
		err := p.db.Update(applyFn(all))
		for _, r := range batch {
			r.err <- err
		}
	}
}

func (p *persister) Apply(deltas []memstore.Delta) error {
	var err error
	switch p.mode {
	case GroupCommit:
		req := &applyReq{deltas: deltas, err: make(chan error, 1)}
		p.qmu.RLock()
		if p.closed {
			p.qmu.RUnlock()
			return ledger.ErrClosed
		}
		p.queue <- req
		p.qmu.RUnlock()
		err = <-req.err
	case BoltBatch:
		err = p.db.Batch(applyFn(deltas))
	default:
		err = p.db.Update(applyFn(deltas))
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	due := p.now().Sub(p.lastPrune) >= time.Hour
	p.mu.Unlock()
	if due {
		_ = p.prune() // best effort; retried next hour
	}
	return nil
}

// applyFn adds the deltas in one transaction. It is idempotent per transaction:
// DB.Batch may run it again after a rollback.
func applyFn(deltas []memstore.Delta) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBudgets)
		for _, d := range deltas {
			rec := d.Record
			rec.Spent = 0
			if v := b.Get([]byte(d.Key)); v != nil {
				old, err := decode(v)
				if err != nil {
					return fmt.Errorf("decode %s: %w", d.Key, err)
				}
				rec.Spent = old.Spent
			}
			rec.Spent += d.SpentDelta
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(d.Key), v); err != nil {
				return err
			}
		}
		return nil
	}
}

func (p *persister) List(scope, id string) ([]memstore.Record, error) {
	prefix := []byte(scope + ":" + id + ":")
	var out []memstore.Record
	err := p.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketBudgets).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			r, err := decode(v)
			if err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if r.Scope == scope && r.ID == id { // ids may contain ':'
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// prune deletes periods that ended more than Retention ago.
func (p *persister) prune() error {
	now := p.now()
	p.mu.Lock()
	p.lastPrune = now
	p.mu.Unlock()
	if err := p.pruneDocuments(); err != nil {
		return err
	}
	cutoff := now.Add(-p.retention)
	var old [][]byte
	err := p.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBudgets).ForEach(func(k, _ []byte) error {
			pk, err := ledger.ParseKey(string(k))
			if err == nil && pk.End.Before(cutoff) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(old) == 0 {
		return err
	}
	return p.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBudgets)
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
