package policytest

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"
)

// Options configure a test run.
type Options struct {
	Paths     []string      // files and directories: policies and data, as for `opa test`
	Run       string        // only tests whose name matches this regular expression
	Verbose   bool          // print every test, not only failures
	Coverage  bool          // measure and print coverage of the policy (non-test) files
	Threshold float64       // with Coverage: fail below this percentage (0 disables)
	Timeout   time.Duration // per test; DefaultTimeout when 0
	Out       io.Writer
}

// DefaultTimeout bounds one test. It is longer than stock OPA's 5 s: the default library's
// plan tests evaluate the whole plan (every alias against every provider), which takes up
// to 2.3 s on a loaded 2-core machine and several times that under the race detector;
// a test that times out there says nothing about the policy. The agreement tests of the
// agent protocols took over 30 s with the machine running other suites: the bound is there
// to stop a runaway rule, not to time tests.
const DefaultTimeout = 2 * time.Minute

// Summary is a run's outcome.
type Summary struct {
	Passed, Failed, Errored, Skipped int
	Coverage                         float64 // percent of policy-file lines covered; -1 without Coverage
	Files                            map[string]float64
}

// OK reports whether every test passed.
func (s Summary) OK() bool { return s.Failed == 0 && s.Errored == 0 && s.Passed > 0 }

// Run loads the paths, runs their tests and prints OPA's report to o.Out.
func Run(ctx context.Context, o Options) (Summary, error) {
	sum := Summary{Coverage: -1}
	if len(o.Paths) == 0 {
		o.Paths = []string{"."}
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	modules, store, err := tester.Load(o.Paths, nil)
	if err != nil {
		return sum, fmt.Errorf("load policies: %w", err)
	}
	compiler := ast.NewCompiler().WithEnablePrintStatements(true)
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return sum, err
	}
	defer store.Abort(ctx, txn)

	cov := cover.New()
	runner := tester.NewRunner().SetCompiler(compiler).SetStore(store).SetModules(modules).
		SetTimeout(o.Timeout).CapturePrintOutput(true).Filter(o.Run)
	if o.Coverage {
		runner = runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return sum, fmt.Errorf("run tests: %w", err)
	}
	// Count results while OPA's own reporter prints them.
	tee := make(chan *tester.Result)
	done := make(chan error, 1)
	rep := tester.PrettyReporter{Output: o.Out, Verbose: o.Verbose, FailureLine: true, LocalVars: true}
	go func() { done <- rep.Report(tee) }()
	for r := range ch {
		switch {
		case r.Skip:
			sum.Skipped++
		case r.Error != nil:
			sum.Errored++
		case r.Fail:
			sum.Failed++
		default:
			sum.Passed++
		}
		tee <- r
	}
	close(tee)
	if err := <-done; err != nil {
		return sum, err
	}
	if o.Coverage {
		sum.Coverage, sum.Files = policyCoverage(cov.Report(modules))
		printCoverage(o.Out, sum)
		if o.Threshold > 0 && sum.Coverage < o.Threshold {
			return sum, fmt.Errorf("policy coverage %.1f%% is below the threshold %.1f%%", sum.Coverage, o.Threshold)
		}
	}
	if sum.Passed+sum.Failed+sum.Errored == 0 {
		return sum, fmt.Errorf("no tests found in %s", strings.Join(o.Paths, " "))
	}
	if !sum.OK() {
		return sum, fmt.Errorf("%d failed, %d errored", sum.Failed, sum.Errored)
	}
	return sum, nil
}

// policyCoverage aggregates line coverage over policy files, leaving tests out.
func policyCoverage(r cover.Report) (float64, map[string]float64) {
	files := map[string]float64{}
	covered, total := 0, 0
	for name, fr := range r.Files {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		covered += fr.CoveredLines
		total += fr.CoveredLines + fr.NotCoveredLines
		if n := fr.CoveredLines + fr.NotCoveredLines; n > 0 {
			files[name] = 100 * float64(fr.CoveredLines) / float64(n)
		}
	}
	if total == 0 {
		return 100, files
	}
	return 100 * float64(covered) / float64(total), files
}

func printCoverage(w io.Writer, s Summary) {
	names := make([]string, 0, len(s.Files))
	for n := range s.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "--------------------------------------------------------------------------------")
	fmt.Fprintln(w, "policy coverage (test files excluded):")
	for _, n := range names {
		fmt.Fprintf(w, "  %6.1f%%  %s\n", s.Files[n], n)
	}
	fmt.Fprintf(w, "  %6.1f%%  total\n", s.Coverage)
}
