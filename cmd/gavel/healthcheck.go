package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/engine/config"
)

// healthcheckTimeout bounds one check: well under Docker's default HEALTHCHECK timeout (30 s)
// and a kubelet's probe period, so a hung gavel fails the check instead of stalling it.
const healthcheckTimeout = 3 * time.Second

// healthcheck asks a running gavel's /healthz (or /readyz with --path) and succeeds only on
// a 200. It exists for container images without a shell or curl (the distroless image in
// deploy/docker), whose HEALTHCHECK can only run gavel itself.
func healthcheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "gavel's address (default: listen from --config, else "+config.DefaultListen+"); a wildcard host means this machine")
	cfgPath := fs.String("config", "", "gavel.yaml whose listen address to check")
	path := fs.String("path", "/healthz", "what to ask: /healthz (the process serves) or /readyz (a bundle is active and a provider configured)")
	timeout := fs.Duration("timeout", healthcheckTimeout, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck: unexpected arguments %v", fs.Args())
	}
	if *path != "/healthz" && *path != "/readyz" {
		return fmt.Errorf("healthcheck: --path must be /healthz or /readyz, not %q", *path)
	}
	target := *addr
	if target == "" {
		target = config.DefaultListen
		if *cfgPath != "" {
			cfg, err := config.Load(*cfgPath, os.Getenv)
			if err != nil {
				return err
			}
			target = cfg.Listen
		}
	}
	target, err := dialable(target)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + target + *path)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d: %s", *path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "%s ok\n", *path)
	return nil
}

// dialable turns a listen address into one to connect to: a wildcard or empty host (gavel
// listening on every interface, as in a container) is reached on loopback.
func dialable(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", listen, err)
	}
	if port == "" {
		return "", errors.New("address " + listen + " has no port")
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}
