package redisstore

import (
	"context"
	"net"

	"github.com/redis/go-redis/v9"

	"github.com/gavel-gw/gavel/internal/scrub"
)

// ScrubHook is a go-redis hook that removes secrets (the client's password) from every
// error the client returns, at its source: a Redis, or a proxy before it, may answer the
// connection's AUTH with an error that quotes it, and those errors travel up into the
// store's errors, gavel's log and, through the admin API, to a client. Errors keep their
// identity (errors.Is/As see the original), so classifying them still works; the store
// turns most of them into ledger.ErrStoreUnavailable anyway.
func ScrubHook(secrets scrub.Set) redis.Hook { return scrubHook{secrets} }

type scrubHook struct{ s scrub.Set }

func (h scrubHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		return c, h.s.Error(err)
	}
}

func (h scrubHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if clean := h.s.Error(err); clean != err {
			cmd.SetErr(clean) // what cmd.Err() and the typed results (Int64Slice…) return
			err = clean
		}
		return err
	}
}

func (h scrubHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if e := cmd.Err(); e != nil {
				if clean := h.s.Error(e); clean != e {
					cmd.SetErr(clean)
				}
			}
		}
		return h.s.Error(err)
	}
}
