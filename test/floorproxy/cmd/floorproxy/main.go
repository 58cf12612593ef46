// Command floorproxy runs the load benchmark's floor (package floorproxy) as its own
// process, so its CPU can be measured the way gavel's is:
//
//	go run ./test/floorproxy/cmd/floorproxy -listen 127.0.0.1:0 -upstream http://127.0.0.1:9999/v1
//
// The first line it prints on stdout is its base URL, so a parent process that passed port 0
// can learn the port. It runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/gavel-gw/gavel/test/floorproxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	upstream := flag.String("upstream", "http://127.0.0.1:9999/v1", "upstream base URL, ending in /v1")
	key := flag.String("api-key", "sk-floor", "bearer token sent upstream")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorproxy:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: floorproxy.New(*upstream, *key)}
	fmt.Println("http://" + ln.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "floorproxy:", err)
		os.Exit(1)
	}
}
