// Command noskip reads `go test -json` on stdin and writes what `go test`
// writes without -v (each package's result, the output of the tests that
// failed, build errors), and fails when any test failed or was skipped.
// `make test` runs every test suite through it: a test that skips (a tool
// not built yet, a missing binary) would otherwise pass unseen, and the
// project allows none.
//
//	go test -json ./... | go run ./devenv/noskip
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	r, err := check(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "noskip:", err)
		os.Exit(2)
	}
	if !r.ok() {
		report(os.Stdout, r)
		os.Exit(1)
	}
}

// report says why the run fails.
func report(w io.Writer, r result) {
	if len(r.skipped) > 0 {
		fmt.Fprintf(w, "\n%d test(s) skipped; make test allows no skipped test (build what they need first, or make them not skip):\n", len(r.skipped))
		for _, s := range r.skipped {
			fmt.Fprintf(w, "  %s %s\n", s.pkg, s.test)
			for _, line := range s.output {
				fmt.Fprintf(w, "      %s", line)
			}
		}
	}
	if r.failed > 0 {
		fmt.Fprintf(w, "\n%d test(s) or package(s) failed\n", r.failed)
	}
}
