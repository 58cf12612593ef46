// Command gavel is the policy-as-code LLM gateway. Subcommands:
//
//	gavel serve  [--config FILE] [--listen ADDR] [--policy PATH | --bundle-url URL]
//	gavel keys new [--key-id ID] [--user U] [--team T] [--project P] [--tier T]
//	gavel keys hash SECRET
//	gavel policy test [--run RE] [-v] [--coverage] [--threshold PCT] [PATH...]
//	gavel policy eval --input FILE [--policy PATH]...
//	gavel policy eval --replay decisions.jsonl --policy CANDIDATE... [--fail-on-change]
//	gavel policy fmt [-l] [-w] [--fail] [PATH...]
//	gavel policy check [--strict=false] [PATH...]
//	gavel policy diff (--replay decisions.jsonl | --live URL [--key KEY] [--since T|24h] [--limit N])
//	                  --policy CANDIDATE... [--format text|md|json]
//	                  [--max-spend-increase PCT] [--max-newly-denied N] [--fail-on-route-change ALIAS]...
//	gavel bundle build [--revision R] [-o bundle.tar.gz] [--signing-key PEM|--signing-secret S] [--signing-alg ALG] [--key-id ID] [DIR...]
//	gavel bundle sign (--signing-key PEM|--signing-secret S) [--signing-alg ALG] [--key-id ID] [-o OUT] BUNDLE.tar.gz
//	gavel healthcheck [--addr HOST:PORT | --config FILE] [--path /healthz|/readyz] [--timeout D]
//	gavel version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/gavel-gw/gavel/engine/app"
	"github.com/gavel-gw/gavel/engine/auth"
	"github.com/gavel-gw/gavel/engine/config"
	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/internal/slogjson"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: gavel <command> [flags]

commands:
  serve      run the gateway
  keys new   create a virtual key (prints the key once, and its hashed record)
  keys hash  print the stored hash of a key
  policy test  run Rego unit tests (OPA's tester; coverage of policy files)
  policy eval  evaluate data.gavel.decision on a recorded input and explain it;
               --replay decisions.jsonl: which logged decisions a candidate policy would change
  policy fmt   format Rego as opa fmt does (-l list, -w write, --fail for CI)
  policy check compile as opa check --strict does, then the bundle activation check
  policy diff  the impact of a candidate on a decision log (--replay FILE) or on a running
               gateway's recent decisions (--live URL --key KEY): changes by team, key,
               alias, route and deny code, spend re-priced, route moves; gates for CI
  bundle build pack policies/ and bundles/ (or DIRs) into a bundle tarball, optionally signed
  bundle sign  sign (or re-sign) a bundle tarball, e.g. one from opa build
  healthcheck  ask a running gavel's /healthz (or --path /readyz); exit 0 only on a 200
               (for container images without a shell or curl)
  version    print the version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "keys":
		err = keys(args[1:], stdout)
	case "policy":
		err = policyCmd(args[1:], stdout, stderr)
	case "bundle":
		err = bundleCmd(args[1:], stdout, stderr)
	case "healthcheck":
		err = healthcheck(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "gavel", version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "gavel: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "gavel:", err)
		return 1
	}
	return 0
}

// buildVersion is set at link time (-ldflags "-X main.buildVersion=v1.2.3", as
// deploy/docker/Dockerfile does); without it the module version from the build info is used.
var buildVersion string

func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "gavel.yaml to read")
	listen := fs.String("listen", "", "address to listen on (overrides the config; default "+config.DefaultListen+")")
	pol := fs.String("policy", "", "policy bundle directory or .tar.gz (overrides the embedded default)")
	bundleURL := fs.String("bundle-url", "", "poll a bundle server for the policy (overrides bundle.url)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected arguments %v", fs.Args())
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath, os.Getenv); err != nil {
			return err
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *pol != "" {
		cfg.Policy = *pol
	}
	if *bundleURL != "" {
		cfg.SetBundleURL(*bundleURL)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	// A soft memory limit first: it is what makes the high GOGC below safe, since the
	// collector runs as often as it must to stay under it, however far GOGC would let
	// the heap grow.
	setMemoryLimit(log, hostMemory)
	if os.Getenv("GOGC") == "" {
		// gavel's live heap is small (tens of MB) and its garbage is per-request: collecting
		// less often cut ~20% of CPU per request in `make bench` for little memory.
		debug.SetGCPercent(defaultGCPercent)
	}
	if path := os.Getenv("GAVEL_CPUPROFILE"); path != "" {
		// A debugging aid for performance work: profile the whole serving lifetime.
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if path := os.Getenv("GAVEL_TRACE"); path != "" {
		stopTrace, err := startTrace(path)
		if err != nil {
			return err
		}
		defer func() {
			if err := stopTrace(); err != nil {
				log.Error("trace", "path", path, "err", err)
			}
		}()
	}
	if prefix := os.Getenv("GAVEL_HEAPPROFILE"); prefix != "" {
		defer heapProfileOnSignal(log, prefix)()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := app.New(ctx, cfg, os.Getenv, log, app.WithBootstrapAdmin(stderr))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		g.Close()
		return err
	}
	return g.Serve(ctx, l)
}

// defaultGCPercent applies unless GOGC is set; see docs/performance.md ("GC and RSS"):
// 400 let the heap reach ~5 × a 10–16 MB live heap, RSS 100–117 MB at 32 connections;
// 200 keeps it under issue 18's 100 MB (88–94 MB; 250 read 91–101) for ~8 µs more GC CPU
// per request.
const defaultGCPercent = 200

func newLogger(w io.Writer, level string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(strings.ToUpper(level)))
	// slog's JSON lines, written without slog's generic walk (one line per request).
	return slog.New(slogjson.New(w, &slog.HandlerOptions{Level: lv}))
}

func keys(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("keys: want 'new' or 'hash'")
	}
	switch args[0] {
	case "hash":
		if len(args) != 2 {
			return errors.New("keys hash: want exactly one key")
		}
		fmt.Fprintln(stdout, auth.Hash(args[1]))
		return nil
	case "new":
		fs := flag.NewFlagSet("keys new", flag.ContinueOnError)
		var r policy.KeyRecord
		fs.StringVar(&r.KeyID, "key-id", "", "key id (default: derived from the hash)")
		fs.StringVar(&r.User, "user", "", "user")
		fs.StringVar(&r.Team, "team", "", "team")
		fs.StringVar(&r.Project, "project", "", "project")
		fs.StringVar(&r.Tier, "tier", "standard", "tier")
		fs.StringVar(&r.Role, "role", "", "rights on the admin endpoints and the console: admin, viewer or none")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if err := policy.ValidateRole(r.Role); err != nil {
			return err
		}
		secret, hash, err := auth.NewKey()
		if err != nil {
			return err
		}
		if r.KeyID == "" {
			r.KeyID = "key-" + hash[:8]
		}
		rec, err := yaml.Marshal(map[string]any{"keys": []auth.FileKey{{SHA256: hash, KeyRecord: r}}})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "# key (shown once; gavel stores only its hash): %s\n%s", secret, rec)
		return nil
	}
	return fmt.Errorf("keys: unknown subcommand %q", args[0])
}
