// Package test holds gavel's black-box end-to-end tests: they start the real gateway on a
// loopback port, point it at fake upstreams that speak each provider's wire format
// (test/fakeupstream), and drive it with the official OpenAI Go SDK, as a user would.
// test/loadbench is the load benchmark behind `make bench`.
package test
