package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// test names a test of a package.
type test struct{ pkg, test string }

// skip is a skipped test and what it printed (its reason).
type skip struct {
	pkg, test string
	output    []string
}

// result is what a run came to.
type result struct {
	skipped []skip
	failed  int // failed tests, and packages that failed without a failed test (build errors, a panic in TestMain)
}

func (r result) ok() bool { return len(r.skipped) == 0 && r.failed == 0 }

// check copies the usual output of the events read from in to out and
// returns the skipped and failed tests. A line that is not JSON (go
// itself failing, say) is copied as is.
func check(in io.Reader, out io.Writer) (result, error) {
	var r result
	outputs := map[test][]string{}  // buffered until the test ends
	failedTests := map[string]int{} // by package
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		key := test{e.Package, e.Test}
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "output" && e.Test != "":
			outputs[key] = append(outputs[key], e.Output)
		case e.Action == "output":
			// Package lines: "ok  pkg 0.1s", "FAIL pkg", "?  pkg [no test
			// files]", a panic in TestMain. The bare "PASS" that -v adds
			// is not in go test's usual output.
			if strings.TrimSpace(e.Output) != "PASS" {
				fmt.Fprint(out, e.Output)
			}
		case e.Test != "" && e.Action == "fail":
			for _, l := range outputs[key] {
				fmt.Fprint(out, l)
			}
			r.failed++
			failedTests[e.Package]++
			delete(outputs, key)
		case e.Test != "" && e.Action == "skip":
			r.skipped = append(r.skipped, skip{pkg: e.Package, test: e.Test, output: reason(outputs[key])})
			delete(outputs, key)
		case e.Test != "" && e.Action == "pass":
			delete(outputs, key)
		case e.Test == "" && e.Action == "fail" && failedTests[e.Package] == 0:
			r.failed++
		}
	}
	return r, sc.Err()
}

// reason drops the "=== RUN" and "--- SKIP" framing from a skipped test's
// output, keeping what the test said.
func reason(lines []string) []string {
	var out []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		out = append(out, strings.TrimLeft(l, " "))
	}
	return out
}
