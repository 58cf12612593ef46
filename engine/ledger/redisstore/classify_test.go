package redisstore

import (
	"errors"
	"io"
	"testing"

	"github.com/redis/go-redis/v9"
)

// replyError is a reply error as Redis sends it (go-redis's own type is internal).
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

var _ redis.Error = replyError("")

func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{io.EOF, true},
		{errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"), true},
		{replyError("LOADING Redis is loading the dataset in memory"), true},
		{replyError("READONLY You can't write against a read only replica."), true},
		{replyError("WRONGPASS invalid username-password pair or user is disabled."), true},
		{replyError("NOAUTH Authentication required."), true},
		{replyError("NOPERM User gavel has no permissions to run the 'evalsha' command"), true},
		{replyError("ERR wrong number of arguments for 'get' command"), false},
		{replyError("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
	} {
		if got := isUnavailable(tc.err); got != tc.want {
			t.Errorf("isUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
