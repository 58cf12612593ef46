package cache

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is L2 in Redis: one string per entry with Redis' own expiry, under
// prefix + "c:" + Key.String(), so replicas sharing the Redis share the cache.
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

var _ Remote = (*Redis)(nil)

// NewRedis returns an L2 over c; prefix namespaces its keys (the ledger's prefix, say).
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	return &Redis{c: c, prefix: prefix + "c:"}
}

// Get implements Remote.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := r.c.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// Set implements Remote.
func (r *Redis) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return r.c.Set(ctx, r.prefix+key, val, ttl).Err()
}

// Purge implements Remote: SCAN over the matching keys (their layout puts scope and
// model first), UNLINK in batches.
func (r *Redis) Purge(ctx context.Context, f Filter) (int, error) {
	pattern := r.prefix + globEscape(f.Scope)
	if f.Scope == "" {
		pattern = r.prefix + "*"
	}
	if f.Model != "" {
		pattern += "|" + globEscape(f.Model) + "|*"
	} else if f.Scope != "" {
		pattern += "|*"
	}
	n := 0
	var cursor uint64
	for {
		keys, next, err := r.c.Scan(ctx, cursor, pattern, 500).Result()
		if err != nil {
			return n, err
		}
		if len(keys) > 0 {
			d, err := r.c.Unlink(ctx, keys...).Result()
			if err != nil {
				return n, err
			}
			n += int(d)
		}
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}

// globEscape quotes the characters Redis' MATCH treats as a pattern.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
