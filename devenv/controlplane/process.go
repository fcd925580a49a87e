package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// stopGrace is how long a component may take to exit after SIGTERM before
// its process group is killed.
const stopGrace = 5 * time.Second

// process is one child process (a control plane component or Prometheus),
// running in its own process group, with its output in logPath.
type process struct {
	name     string
	binary   string
	args     []string
	env      []string // added to the environment
	cmd      *exec.Cmd
	logPath  string
	logStart int64         // size of the log when this process started (the log is appended to)
	done     chan struct{} // closed when the process has exited and been reaped
	waitErr  error         // valid once done is closed
}

// launcher starts every child process from one goroutine locked to its OS
// thread for the life of the program (a test binary, the playground).
// Pdeathsig fires when the thread that forked the child exits, not when the
// process does, and Go ends a thread whenever a goroutine locked to it
// returns: a child forked from an arbitrary goroutine could be SIGKILLed
// while the program still needs it. The launcher's thread never exits, so
// the signal fires exactly when the program dies (including on panic,
// os.Exit or SIGKILL), and no child outlives it.
var launcher struct {
	once sync.Once
	reqs chan launchRequest
}

type launchRequest struct {
	cmd    *exec.Cmd
	result chan error
}

func launch(cmd *exec.Cmd) error {
	launcher.once.Do(func() {
		launcher.reqs = make(chan launchRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the binary
			for r := range launcher.reqs {
				r.result <- r.cmd.Start()
			}
		}()
	})
	result := make(chan error, 1)
	launcher.reqs <- launchRequest{cmd: cmd, result: result}
	return <-result
}

// startProcess starts binary with args and the environment of the program
// plus env, logging to logDir/<name>.log (and to extra, when not
// nil, with every line prefixed by "[name] ").
func startProcess(name, binary string, args, env []string, logDir string, extra io.Writer) (*process, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out io.Writer = logFile
	if extra != nil {
		out = io.MultiWriter(logFile, &linePrefixer{w: extra, prefix: "[" + name + "] "})
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(logFile, "==> %s %s\n", binary, strings.Join(args, " "))
	st, err := logFile.Stat()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := launch(cmd); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, binary: binary, args: args, env: env, cmd: cmd, logPath: logPath, logStart: st.Size(), done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id of the child (also its process group id).
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has exited, with its exit error.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// exitError returns an error describing an unexpected exit, with the tail
// of the process's log. It wraps ErrAddressInUse when the process said
// that an address was in use: then it can be started again on other ports.
func (p *process) exitError() error {
	_, err := p.exited()
	if p.saidAddressInUse() {
		err = errors.Join(err, ErrAddressInUse)
	}
	return fmt.Errorf("%s exited unexpectedly (%w); last lines of %s:\n%s", p.name, err, p.logPath, p.logTail())
}

// saidAddressInUse reports whether this run of the process (not an earlier
// one in the same log) logged that an address was in use, as every Go
// server does when its listen fails with EADDRINUSE.
func (p *process) saidAddressInUse() bool {
	f, err := os.Open(p.logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(p.logStart, io.SeekStart); err != nil {
		return false
	}
	out, err := io.ReadAll(io.LimitReader(f, 1<<20))
	return err == nil && bytes.Contains(out, []byte(syscall.EADDRINUSE.Error()))
}

// stop terminates the process group (SIGTERM, then SIGKILL after grace)
// and waits until the process is reaped. It is safe to call more than once.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	pgid := p.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// logTail returns roughly the last 40 lines of the process's log.
func (p *process) logTail() string {
	return fileTail(p.logPath, 40)
}

func fileTail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	const maxBytes = 8 << 10
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return "    " + strings.Join(all, "\n    ")
}

// linePrefixer writes every line to w prefixed with prefix. Partial lines
// are buffered until their newline arrives.
type linePrefixer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (l *linePrefixer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := append([]byte(l.prefix), l.buf[:i+1]...)
		l.buf = l.buf[i+1:]
		if _, err := l.w.Write(line); err != nil {
			return len(b), err
		}
	}
}
