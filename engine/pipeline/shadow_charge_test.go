package pipeline_test

import (
	"context"
	"testing"

	"github.com/gavel-gw/gavel/adapters/mock"
	"github.com/gavel-gw/gavel/engine/ledger"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

// A decision with shadow targets mirrors the request on the executor's workers; what the
// copy costs lands on the shadow scope of its experiment, on the caller's own budgets, or
// nowhere, as Options.ShadowCharge says. The caller's request is charged its own cost in
// every case.
func TestShadowCharge(t *testing.T) {
	req := chatRequest(goodID)
	primary := cost(price, upstreamUsage(t, mock.Config{Name: "good", Reply: goodReply}, req))
	shadow := cost(shadowPrice, upstreamUsage(t, mock.Config{Name: "shadow", Reply: shadowReply}, req))
	if primary == shadow || primary == 0 || shadow == 0 {
		t.Fatalf("test setup: primary %d and shadow %d µUSD must differ and not be 0", primary, shadow)
	}
	shadowScope := ledger.Budget{Scope: ledger.ScopeShadow, ID: "e1", Period: ledger.PeriodMonth, LimitMicroUSD: bigLimit, Hard: true}
	tests := []struct {
		charge string
		// what the caller's team and the experiment's shadow budget have spent at the end
		team, shadowSpent int64
	}{
		{"", primary, shadow}, // the default is the shadow scope
		{pipeline.ShadowChargeShadow, primary, shadow},
		{pipeline.ShadowChargeCaller, primary + shadow, 0},
		{pipeline.ShadowChargeNone, primary, 0},
	}
	for _, tc := range tests {
		name := tc.charge
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			r := newRig(t, setup{
				budgets: []map[string]any{
					teamDaily(bigLimit),
					{"name": "shadow-e1", "scope": "shadow", "id": "e1", "period": "month", "limit_musd": bigLimit},
				},
				shadow: []string{shadowID}, experiment: "e1", charge: tc.charge,
			})
			x := r.p.Start(pipeline.EndpointChat)
			if err := r.p.AdmitChat(context.Background(), x, ana, req, ""); err != nil {
				t.Fatal(err)
			}
			if d := x.Decision(); len(d.Shadow) != 1 || d.Shadow[0].String() != shadowID || len(d.Budgets) != 1 {
				t.Fatalf("decision = %+v, want one shadow and only the team budget", d)
			}
			if _, err := r.p.Chat(context.Background(), x); err != nil {
				t.Fatal(err)
			}
			r.p.Finish(x, 200, "")

			// The shadow's log line is written once its cost is settled and the primary's
			// answer is known.
			rec := r.shadow.next(t)
			if got := attr(rec, "decision_id").String(); got != x.ID {
				t.Errorf("shadow of decision %q, want %q", got, x.ID)
			}
			if got := attr(rec, "cost_micro_usd").Int64(); got != shadow {
				t.Errorf("shadow cost %d, want %d", got, shadow)
			}
			if got := attr(rec, "experiment").String(); got != "e1" {
				t.Errorf("shadow experiment %q, want e1", got)
			}
			r.waitSpent(t, teamBudget(bigLimit), tc.team)
			r.waitSpent(t, shadowScope, tc.shadowSpent)
		})
	}
}
