package fakecore

import (
	"slices"
	"testing"
)

func TestSteps(t *testing.T) {
	q := NewSteps[string]()
	q.SetDefault(AnyModel, "any-default")
	q.SetDefault("m", "m-default")
	q.Script(AnyModel, "any-1")
	q.Script("m", "m-1", "m-2")

	var got []string
	for _, model := range []string{"m", "m", "m", "x", "x", "m"} {
		st, d := q.Next(model)
		if (d == nil) != (st == "m-1" || st == "m-2" || st == "any-1") {
			t.Errorf("Next(%q) = %q with defaults %v", model, st, d)
		}
		got = append(got, st)
	}
	want := []string{"m-1", "m-2", "any-1", "any-default", "any-default", "m-default"}
	if !slices.Equal(got, want) {
		t.Errorf("steps = %q, want %q", got, want)
	}
	if q.Count("m") != 4 || q.Count("x") != 2 || q.Count(AnyModel) != 6 {
		t.Errorf("counts m=%d x=%d any=%d", q.Count("m"), q.Count("x"), q.Count(AnyModel))
	}
	if models := q.Models(); len(models) != 1 || models[0] != "m" {
		t.Errorf("Models() = %q", models)
	}
	q.Reset()
	if st, _ := q.Next("m"); st != "" || q.Count(AnyModel) != 1 {
		t.Errorf("after Reset: %q, count %d", st, q.Count(AnyModel))
	}
}

func TestRecorder(t *testing.T) {
	var r Recorder[int]
	r.Add(1)
	r.SetOn(false)
	r.Add(2)
	r.SetOn(true)
	r.Add(3)
	if got := r.All(); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("All() = %v", got)
	}
	r.Reset()
	if len(r.All()) != 0 {
		t.Error("Reset kept records")
	}
}

func TestExtraHeaders(t *testing.T) {
	if h := ExtraHeaders(nil, "Retry-After", ""); h != nil {
		t.Errorf("got %v, want nil", h)
	}
	h := ExtraHeaders(nil, "Retry-After", "1", "retry-after-ms", "")
	if len(h) != 1 || h.Get("Retry-After") != "1" {
		t.Errorf("got %v", h)
	}
}
