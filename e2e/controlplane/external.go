package controlplane

import (
	"io"
	"syscall"
)

// Process is a child process started like the control plane's components:
// in its own process group, killed with the test binary, its output in
// logDir/<name>.log. The e2e tests run sluice-controller and the metrics
// simulator this way.
type Process struct{ p *process }

// StartProcess starts binary with args (and env added to the current
// environment). log, when not nil, also receives its output, each line
// prefixed with "[name] ".
func StartProcess(name, binary string, args, env []string, logDir string, log io.Writer) (*Process, error) {
	p, err := startProcess(name, binary, args, env, logDir, log)
	if err != nil {
		return nil, err
	}
	return &Process{p: p}, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.p.pid() }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) { return p.p.exited() }

// Stop terminates the process (SIGTERM, SIGKILL after a grace period) and
// waits for it. Safe to call more than once.
func (p *Process) Stop() { p.p.stop(stopGrace) }

// Kill kills the process group at once, as a crash would, and waits for it.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.p.pid(), syscall.SIGKILL)
	<-p.p.done
}

// LogTail is the end of the process's log.
func (p *Process) LogTail() string { return p.p.logTail() }
