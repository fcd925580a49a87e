//go:build e2e && linux

package plugin_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/sluicehq/sluice/cmd/kubectl-sluice/cli"
)

// sluiceOnTerminal is sluice with its output on a pseudo-terminal of the
// given width; it returns what the terminal received.
func (f *fixture) sluiceOnTerminal(width int, args ...string) result {
	f.t.Helper()
	master, tty, err := openPTY(width)
	if err != nil {
		f.t.Fatalf("pseudo-terminal: %v", err)
	}
	defer master.Close()
	var screen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&screen, master) // ends with EIO once tty is closed
	}()
	var errOut bytes.Buffer
	all := append(append([]string{}, args...), "--kubeconfig", env.ControlPlane.KubeconfigPath(), "-n", f.ns)
	code := cli.Run(f.ctx, all, genericiooptions.IOStreams{In: strings.NewReader(""), Out: tty, ErrOut: &errOut})
	tty.Close()
	<-done
	f.t.Logf("kubectl sluice %s (on a terminal) -> exit %d\n%q\n%s", strings.Join(args, " "), code, screen.String(), errOut.String())
	return result{code: code, out: screen.String(), errOut: errOut.String()}
}

// openPTY opens a pseudo-terminal pair (Linux /dev/ptmx) with the given
// number of columns.
func openPTY(cols int) (master, tty *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	ioctl := func(req uintptr, arg unsafe.Pointer) error {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), req, uintptr(arg)); e != 0 {
			return e
		}
		return nil
	}
	var n uint32
	var unlock int32
	ws := struct{ rows, cols, x, y uint16 }{rows: 50, cols: uint16(cols)}
	for _, call := range []struct {
		req uintptr
		arg unsafe.Pointer
	}{{syscall.TIOCGPTN, unsafe.Pointer(&n)}, {syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)}, {syscall.TIOCSWINSZ, unsafe.Pointer(&ws)}} {
		if err := ioctl(call.req, call.arg); err != nil {
			master.Close()
			return nil, nil, err
		}
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, tty, nil
}
