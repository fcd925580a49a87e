package controlplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrAddressInUse is wrapped by the error of a process that exited because
// an address it was given to listen on was taken.
var ErrAddressInUse = errors.New("address already in use")

// portAttempts bounds how many times startListening starts a process on new
// ports after a port was taken between its choice and the process's bind.
const portAttempts = 5

// listenTimeout bounds the wait for a process to listen on its ports.
const listenTimeout = time.Minute

// startListening starts a process with start on n ports of 127.0.0.1 that
// were free a moment ago, and waits until it listens on all of them.
//
// A port chosen free can be taken before the process binds it (two
// environments starting together pick from the same pool): such a process
// exits with "address already in use", and it is started again on new
// ports. Waiting for the process itself to hold the ports (not for an
// answer on them, which another process could give) makes the check exact.
// prefer, when it has n ports (none 0), are those of the first attempt (a
// restart on the ports a process had before).
func startListening(ctx context.Context, n int, prefer []int, start func(ports []int) (*process, error)) (*process, []int, error) {
	var last error
	for attempt := range portAttempts {
		ports := prefer
		if attempt > 0 || len(ports) != n || slices.Contains(ports, 0) {
			var err error
			if ports, err = freePorts(n); err != nil {
				return nil, nil, err
			}
		}
		p, err := start(ports)
		if err != nil {
			return nil, nil, err
		}
		err = p.waitListening(ctx, listenTimeout, ports...)
		if err == nil {
			return p, ports, nil
		}
		p.stop(stopGrace)
		if !errors.Is(err, ErrAddressInUse) {
			return nil, nil, err
		}
		last = err
	}
	return nil, nil, fmt.Errorf("ports taken %d times in a row: %w", portAttempts, last)
}

// waitListening waits until the process holds a listening socket on every
// port, failing early when it exits.
func (p *process) waitListening(ctx context.Context, timeout time.Duration, ports ...int) error {
	var missing []int
	err := WaitFor(ctx, timeout, func() (bool, error) {
		if done, _ := p.exited(); done {
			return false, p.exitError()
		}
		missing = missing[:0]
		for _, port := range ports {
			ok, err := listensOn(p.pid(), port)
			if err != nil {
				return false, err
			}
			if !ok {
				missing = append(missing, port)
			}
		}
		return len(missing) == 0, nil
	})
	if errors.Is(err, ErrTimeout) {
		return fmt.Errorf("%s does not listen on ports %v: %w; last lines of %s:\n%s", p.name, missing, err, p.logPath, p.logTail())
	}
	return err
}

// freePorts returns n distinct TCP ports of 127.0.0.1 that were free a
// moment ago. Nothing reserves them: see startListening.
func freePorts(n int) ([]int, error) {
	// Hold every listener until all are chosen so the ports are distinct.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// listensOn reports whether process pid holds a TCP socket listening on
// port (on any address), from Linux's /proc: the kernel's socket tables
// name each listening socket's inode, and the process's file descriptors
// name the sockets it holds.
func listensOn(pid, port int) (bool, error) {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := listeningInodes(table, port, inodes); err != nil {
			return false, err
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(fdDir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // exited meanwhile; the caller sees that next
	}
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return true, nil
		}
	}
	return false, nil
}

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// listeningInodes adds to inodes the inode of every socket of the table
// (/proc/net/tcp format) that listens on port.
func listeningInodes(table string, port int, inodes map[string]bool) error {
	f, err := os.Open(table)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no IPv6
	}
	if err != nil {
		return err
	}
	defer f.Close()
	// Lines: "sl local_address rem_address st ... uid timeout inode ...",
	// local_address as HEXIP:HEXPORT.
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen || !strings.HasSuffix(fields[1], want) {
			continue
		}
		inodes[fields[9]] = true
	}
	return sc.Err()
}
