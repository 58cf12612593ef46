// Command fakeupstream runs the fake OpenAI-compatible upstream as its own process, for
// humans poking at gavel and for the load benchmark:
//
//	go run ./test/fakeupstream/cmd/fakeupstream -listen 127.0.0.1:9999
//
// The first line it prints on stdout is the base URL (with /v1), so a parent process that
// passed port 0 can learn the port. It runs until SIGINT or SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9999", "address to listen on (port 0: any free port)")
	reply := flag.String("reply", "", `reply text for every model (default "Hello from <model>")`)
	chunks := flag.Int("chunks", fakeupstream.DefaultChunks, "content chunks per streamed reply")
	latency := flag.Duration("latency", 0, "wait before the response headers")
	interval := flag.Duration("chunk-interval", 0, "wait between stream events")
	record := flag.Bool("record", false, "record requests (only useful in-process; costs memory)")
	flag.Parse()

	s, err := fakeupstream.NewOn(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeupstream:", err)
		os.Exit(1)
	}
	s.SetRecording(*record)
	s.SetDefault(fakeupstream.AnyModel, fakeupstream.Step{
		Reply: *reply, Chunks: *chunks, Latency: *latency, ChunkInterval: *interval,
	})
	fmt.Println(s.URL())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	s.Close()
}
