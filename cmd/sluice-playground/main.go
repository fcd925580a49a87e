// Command sluice-playground runs Sluice on this machine: a real control
// plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kwok for simulated nodes), Prometheus and sluice-controller in
// development mode.
//
//	sluice-playground up   --dir D   start everything; runs until Ctrl-C or `down`
//	sluice-playground demo --dir D   up, then release the Kruise guide's example
//	sluice-playground down --dir D   stop a playground started in D
//
// It is a self-contained program: the CRDs, the example manifests, the
// alert rules and kwok's stages are inside it, and it runs the manager
// from its own binary. It needs only the control-plane binaries that
// `make tools` builds (devenv/tools) in ~/.cache/sluice/bin, or
// $SLUICE_BIN_DIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	if os.Args[1] == managerCommand {
		// The manager's process: exactly what sluice-controller runs.
		os.Exit(app.Main(os.Args[2:]))
	}
	// The API client logs nothing worth showing here but would print a
	// stack trace on its first log line without a logger.
	ctrllog.SetLogger(logr.Discard())
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", filepath.Join(os.TempDir(), "sluice-playground"), "folder for the cluster's data, kubeconfig and logs")
	exit := fs.Bool("exit", false, "demo: stop after the scenario instead of running until interrupted")
	_ = fs.Parse(os.Args[2:])
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail(err)
	}

	switch os.Args[1] {
	case "up":
		err = run(abs, nil, false)
	case "demo":
		err = run(abs, demo, *exit)
	case "down":
		err = down(abs)
	default:
		usage()
	}
	if err != nil {
		fail(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sluice-playground up|demo|down [--dir D] [--exit]")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sluice-playground:", err)
	os.Exit(1)
}

// run starts the playground, runs scenario (if any) and then waits for
// Ctrl-C or `down`, unless exitAfter.
func run(dir string, scenario func(context.Context, *playground) error, exitAfter bool) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pidFile := filepath.Join(dir, "playground.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidFile)

	p, err := start(ctx, dir)
	if err != nil {
		return err
	}
	defer p.stop()
	p.printHelp()
	if scenario != nil {
		if err := scenario(ctx, p); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if exitAfter {
			return nil
		}
		p.printHelp()
	}
	fmt.Println("Running until Ctrl-C (or `make demo-down`).")
	<-ctx.Done()
	fmt.Println("\nStopping…")
	return nil
}

// down stops the playground whose pid file is in dir.
func down(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "playground.pid"))
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("no playground is running in", dir)
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "playground.pid"), err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping playground (pid %d): %w", pid, err)
	}
	for i := 0; i < 300 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println("playground stopped")
	return nil
}
