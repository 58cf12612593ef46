package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// otlpSink is a stand-in OpenTelemetry collector for -trace runs: it accepts OTLP/HTTP
// exports and discards them, so a traced gavel pays the whole cost of making, batching,
// encoding and sending spans while no collector competes for the CPU.
type otlpSink struct {
	srv     *http.Server
	url     string
	exports atomic.Int64
	bytes   atomic.Int64
}

func startSink() (*otlpSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + l.Addr().String()}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.exports.Add(1)
		s.bytes.Add(n)
		// An empty ExportTraceServiceResponse is an empty protobuf message.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})}
	go s.srv.Serve(l)
	return s, nil
}

// env is what a gavel child needs to trace to the sink: every request at ratio 1, else
// the share of traces a production deployment would sample.
func (s *otlpSink) env(ratio float64) []string {
	env := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + s.url, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_SERVICE_NAME=gavel-loadbench"}
	if ratio >= 1 {
		return append(env, "OTEL_TRACES_SAMPLER=always_on")
	}
	return append(env, "OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG="+strconv.FormatFloat(ratio, 'f', -1, 64))
}

func (s *otlpSink) close() { s.srv.Close() }
