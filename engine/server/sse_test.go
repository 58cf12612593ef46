package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// deadlineRecorder is a response writer that keeps the write deadlines set on it.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	set []time.Time
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.set = append(d.set, t)
	return nil
}

// TestStreamWriteDeadlines: every write of a stream may take at least the stall bound from
// when it starts, and never runs past the request's deadline, and a stream of quick writes
// sets the connection's deadline once, not once per write.
func TestStreamWriteDeadlines(t *testing.T) {
	const stall = 400 * time.Millisecond
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	w := &sseWriter{w: rec, rc: http.NewResponseController(rec), stall: stall, deadline: true}
	if err := w.arm(); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		start := time.Now()
		if err := w.raw([]byte("data: x\n\n")); err != nil {
			t.Fatal(err)
		}
		end := time.Now()
		d := rec.set[len(rec.set)-1]
		if d.Before(start.Add(stall)) && (w.until.IsZero() || d.Before(w.until)) {
			t.Errorf("%s: a write at %v has the deadline %v, short of its bound", what, start, d)
		}
		if !w.until.IsZero() && d.After(w.until) {
			t.Errorf("%s: the deadline %v passes the request's %v", what, d, w.until)
		}
		if d.After(end.Add(stall + stallSlack(stall))) {
			t.Errorf("%s: the deadline %v is more than the slack past the bound", what, d)
		}
	}
	for range 100 {
		check("quick writes")
	}
	if len(rec.set) != 1 {
		t.Errorf("100 quick writes set the deadline %d times", len(rec.set))
	}
	time.Sleep(stallSlack(stall) + 10*time.Millisecond)
	check("a write after the slack")
	if len(rec.set) != 2 {
		t.Errorf("a write after the slack set the deadline %d times in all, want 2", len(rec.set))
	}
	w.until = time.Now().Add(stall / 2) // a request deadline sooner than the bound
	check("a write near the request's deadline")
	w.final()
	check("the final write")
	if n := len(rec.set); n != 3 && n != 4 {
		t.Errorf("%d settings", n)
	}
}
