//go:build !linux

package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr has no portable equivalent; children are still stopped on exit and SIGINT.
func setProcAttr(*exec.Cmd) {}

// signalGroup signals just the child.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error { return cmd.Process.Signal(sig) }
