package signals

import (
	"strings"
	"testing"
	"time"
)

func TestVersionMovesOnlyWhenTheSnapshotMay(t *testing.T) {
	clock := time.Unix(1_700_000_000, 0)
	tr := New(time.Minute)
	tr.now = func() time.Time { return clock }
	tr.Register("p")
	tg := tr.Target("p", "m")
	width := time.Minute / buckets

	steps := []struct {
		name    string
		do      func()
		changes bool
	}{
		{"nothing happened", func() {}, false},
		{"time passes with no attempt ever", func() { clock = clock.Add(time.Hour) }, false},
		{"an attempt begins", tg.Begin, true},
		{"it ends", func() { tg.End(time.Second, 0, false) }, true},
		{"within the same bucket", func() { clock = clock.Add(time.Millisecond) }, false},
		{"a bucket boundary while samples age out", func() { clock = clock.Add(width) }, true},
		{"the window has passed: all aged out", func() { clock = clock.Add(2 * time.Minute) }, true},
		{"idle after that", func() { clock = clock.Add(time.Hour) }, false},
		{"health flips", func() { tr.SetHealthy("p", false) }, true},
		{"health unchanged", func() { tr.SetHealthy("p", false) }, false},
		{"a breaker moves", tr.Kick, true},
		{"a provider is registered", func() { tr.Register("q") }, true},
		{"reading the snapshot", func() { tr.Snapshot() }, false},
	}
	for _, st := range steps {
		before, activity := tr.Version(), tr.Activity()
		st.do()
		if got := tr.Version() != before; got != st.changes {
			t.Errorf("%s: version changed = %v, want %v", st.name, got, st.changes)
		}
		// Activity moves with the version except where only time passed (ageing).
		ageing := strings.Contains(st.name, "bucket boundary") || strings.Contains(st.name, "window has passed")
		if got := tr.Activity() != activity; got != (st.changes && !ageing) {
			t.Errorf("%s: activity changed = %v, want %v", st.name, got, st.changes && !ageing)
		}
	}
}
