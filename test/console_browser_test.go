package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/openai/openai-go/v3"
)

// chromium finds a Chromium or Chrome binary; missing, the test is skipped, and under
// CI=true (where .ci/run installs Debian's chromium) it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium); under CI=true the browser tests must run")
	}
	t.Skip("chromium is not installed (apt-get install chromium); under CI=true this fails instead")
	return ""
}

// browser starts headless Chromium for one test, at laptop size.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1200, 800))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now: its start-up is not a step's
		t.Fatal(err)
	}
	return ctx
}

// shots is where screenshots go: docs/console with CONSOLE_SCREENSHOTS=1 (to refresh
// the README's), else the test's temp dir.
func shots(t *testing.T) string {
	if os.Getenv("CONSOLE_SCREENSHOTS") != "" {
		dir := filepath.Join("..", "docs", "console")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// waitText polls until the element's text satisfies ok.
func waitText(sel string, ok func(string) bool, out *string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)))
			var txt string
			if err == nil {
				txt, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
			}
			if err == nil && ok(txt) {
				if out != nil {
					*out = txt
				}
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: text %q never matched (%v)", sel, txt, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// goTo moves the open console to another page (a fragment change: no page load that
// Navigate could wait for).
func goTo(hash string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf("(location.hash = %q, true)", hash)))
		return err
	})
}

// text reads an element's text into out.
func text(sel string, out *string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) (err error) {
		*out, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return err
	})
}

func screenshot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if err := chromedp.Do(ctx, chromedp.Sleep(150*time.Millisecond)); err != nil {
			return err
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// The console in headless Chromium against a live gateway: log in, see live traffic,
// open a denied decision and read its reasons, create a key and use it through the
// OpenAI SDK, revoke it and see 401, upload a candidate bundle and see the diff, and
// render at phone width. Screenshots of every page land in docs/console with
// CONSOLE_SCREENSHOTS=1.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	keys, admin, search, ads := consoleKeys(t)
	g := start(t, "keys_file: "+keys+"\npolicy: "+consoleBundle(t)+"\n", nil)
	dir := shots(t)
	console := g.URL + "/console/"
	run := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			// What the page shows says more than a timeout.
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			page, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`location.hash + "\n" + document.body.innerText`))
			t.Fatalf("%s: %v\npage: %.2000s", step, err, page)
		}
	}

	// Nothing but the login page without a key: any page sends the browser there.
	run("login page", chromedp.Navigate(console+"#/overview"), chromedp.WaitVisible(chromedp.ID("#login-key")),
		screenshot(dir, "login"))
	run("wrong key", chromedp.SendKeys(chromedp.ID("#login-key"), "gv-wrong"), chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		waitText("#login-error", func(s string) bool { return strings.Contains(s, "not valid") }, nil))
	run("log in", chromedp.SetValue(chromedp.ID("#login-key"), admin), chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("#page-overview")))

	// Live traffic: requests made now appear on the open overview at its next refresh.
	cctx := context.Background()
	for i := range 6 {
		key, model := search, "smart"
		if i%3 == 2 {
			key, model = ads, "fast"
		}
		if _, err := g.client(key).Chat.Completions.New(cctx, userParams(model, fmt.Sprintf("question %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.client(ads).Chat.Completions.New(cctx, userParams("no-such-model", "hi")); err == nil {
		t.Fatal("unknown model answered")
	}
	run("live traffic", waitText("#ov-requests", func(s string) bool { return s == "7" }, nil),
		waitText("#ov-denied", func(s string) bool { return s == "1" }, nil),
		chromedp.WaitVisible(chromedp.CSS(`table[data-what="team"] tbody tr`)), screenshot(dir, "overview"))

	var plan string
	run("routing", goTo("#/routing"), chromedp.WaitVisible(chromedp.ID("#plan-table")),
		text("#plan-table", &plan), chromedp.WaitVisible(chromedp.ID("#providers-table")), screenshot(dir, "routing"))
	if !strings.Contains(plan, "route.alias:smart") || !strings.Contains(plan, "mock/mock-large") {
		t.Errorf("routing page lacks the plan: %.300s", plan)
	}

	// A denied decision, found by the search, explained.
	var reasons, outcome string
	run("decisions", goTo("#/decisions"), chromedp.WaitVisible(chromedp.CSS("#decisions-table tbody tr")),
		screenshot(dir, "decisions"),
		chromedp.SetValue(chromedp.CSS(`#decision-filters input[name="status"]`), "denied"),
		chromedp.Click(chromedp.CSS(`#decision-filters button[type="submit"]`)),
		waitText("#decisions-table tbody", func(s string) bool { return strings.Contains(s, "denied") && strings.Count(s, "no-such-model") == 1 }, nil),
		chromedp.Click(chromedp.CSS("#decisions-table tbody tr")),
		chromedp.WaitVisible(chromedp.ID("#explain-reasons")),
		text("#explain-reasons", &reasons), text("#explain-outcome", &outcome),
		screenshot(dir, "explain"))
	if !strings.Contains(reasons, "route.unknown_model") || !strings.Contains(outcome, "denied 404") {
		t.Errorf("explain: reasons %q, outcome %q", reasons, outcome)
	}

	var budgets string
	run("spend", goTo("#/spend"), chromedp.WaitVisible(chromedp.ID("#budgets-table")),
		text("#budgets-table", &budgets), screenshot(dir, "spend"))
	if !strings.Contains(budgets, "team-daily") || !strings.Contains(budgets, "search") {
		t.Errorf("spend page: %.300s", budgets)
	}
	run("experiments", goTo("#/experiments"), chromedp.WaitVisible(chromedp.ID("#arms-table")),
		screenshot(dir, "experiments"))

	// A key made in the console works through the OpenAI SDK until it is revoked there.
	var secret, id string
	run("create key", goTo("#/keys"), chromedp.WaitVisible(chromedp.ID("#key-form")),
		chromedp.SendKeys(chromedp.CSS(`#key-form input[name="name"]`), "ci-bot"),
		chromedp.SendKeys(chromedp.CSS(`#key-form input[name="team"]`), "search"),
		chromedp.Click(chromedp.CSS(`#key-form button[type="submit"]`)),
		waitText("#key-secret", func(s string) bool { return strings.HasPrefix(s, "gv") && len(s) > 20 }, &secret),
		text("#key-result b", &id), screenshot(dir, "keys"))
	if _, err := g.client(secret).Chat.Completions.New(cctx, userParams("fast", "from the new key")); err != nil {
		t.Fatalf("the console's new key: %v", err)
	}
	row := fmt.Sprintf(`#keys-table tr[data-key=%q]`, id)
	run("revoke key", chromedp.Click(chromedp.CSS(row+" button.revoke")), chromedp.Click(chromedp.CSS(row+" button.revoke")),
		chromedp.WaitVisible(chromedp.CSS(row+` [data-state="revoked"]`)))
	var apiErr *openai.Error
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := g.client(secret).Chat.Completions.New(cctx, userParams("fast", "after revocation"))
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a revoked key: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A candidate bundle uploaded on the policy page: its replay diff against the
	// decisions above (the four smart requests move; nothing else does).
	cand := filepath.Join(t.TempDir(), "candidate.tar.gz")
	writeFile(t, cand, string(smartToFast(t)))
	var rerouted, active string
	run("policy diff", goTo("#/policy"), chromedp.WaitVisible(chromedp.ID("#history-table")),
		text("#active-revision", &active),
		chromedp.SetUploadFiles(chromedp.ID("#bundle-file"), []string{cand}), chromedp.Click(chromedp.CSS(`#diff-form button[type="submit"]`)),
		waitText("#im-rerouted", func(s string) bool { return s != "" }, &rerouted),
		chromedp.WaitVisible(chromedp.ID("#moves-table")), screenshot(dir, "policy"))
	if active != "console-1" || rerouted != "4" {
		t.Errorf("policy page: active %q, rerouted %q", active, rerouted)
	}

	// Phone width: the page fits the screen (tables scroll inside their panels).
	var overflow bool
	run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), goTo("#/overview"),
		chromedp.WaitVisible(chromedp.ID("#page-overview")),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) (err error) {
			overflow, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`))
			return err
		}), screenshot(dir, "phone"))
	if overflow {
		t.Error("the overview overflows a phone-width screen")
	}

	// Logging out ends the session: the pages are out of reach again.
	run("log out", chromedp.EmulateViewport(1200, 800), goTo("#/overview"), chromedp.WaitVisible(chromedp.ID("#logout")),
		chromedp.Click(chromedp.ID("#logout")), chromedp.WaitVisible(chromedp.ID("#login-key")),
		goTo("#/decisions"), chromedp.WaitVisible(chromedp.ID("#login-key")))
}

// The console's files carry the security headers, and its page has no inline script.
func TestConsoleHeaders(t *testing.T) {
	g := start(t, "", nil)
	for _, path := range []string{"/console/", "/console/app.js", "/console/decisions", "/console/console.css"} {
		resp, err := http.Get(g.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: %d %v", path, resp.StatusCode, h)
		}
	}
	page := g.text(t, "/console/")
	if strings.Contains(page, "<script>") || strings.Contains(page, " style=") || strings.Contains(page, "onclick=") {
		t.Errorf("the console page has inline script or style: %s", page)
	}
	resp, err := http.Get(g.URL + "/console")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/console/" {
		t.Errorf("/console went to %s", resp.Request.URL.Path)
	}
}
