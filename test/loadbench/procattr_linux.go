package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the child in its own process group, so stopping it also stops anything
// it started (a wrapper script's children), and makes the kernel kill it if the benchmark
// dies without cleaning up (kill -9, a crash), so nothing is left holding a port.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to the child's whole process group.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}
