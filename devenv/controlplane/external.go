package controlplane

import (
	"context"
	"io"
	"syscall"
)

// Process is a child process started like the control plane's components:
// in its own process group, killed with the program that started it, its
// output in logDir/<name>.log. sluice-controller runs this way
// (devenv/manager).
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

// StartListening starts a process on n TCP ports of 127.0.0.1 and returns
// once it listens on all of them, with the ports. start runs the process
// with the ports it is given. Ports are chosen free, but another process
// can take one before the new one binds it: then the new process exits
// with "address already in use" and is started again on new ports. prefer,
// when it holds n ports (none 0), are the ports of the first attempt (the
// ports a restarted process had).
func StartListening(ctx context.Context, n int, prefer []int, start func(ports []int) (*Process, error)) (*Process, []int, error) {
	p, ports, err := startListening(ctx, n, prefer, func(ports []int) (*process, error) {
		p, err := start(ports)
		if err != nil {
			return nil, err
		}
		return p.p, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return &Process{p: p}, ports, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.p.pid() }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) { return p.p.exited() }

// ExitError describes an exit that was not asked for, with the end of the
// log; it wraps ErrAddressInUse when the process could not bind a port.
func (p *Process) ExitError() error { return p.p.exitError() }

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
