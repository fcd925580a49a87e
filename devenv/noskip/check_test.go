package main

import (
	"strings"
	"testing"
)

// events are `go test -json` lines, as go 1.26 writes them (trimmed).
const events = `{"Action":"start","Package":"ex/a"}
{"Action":"run","Package":"ex/a","Test":"TestOK"}
{"Action":"output","Package":"ex/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"ex/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"ex/a","Test":"TestOK","Elapsed":0}
{"Action":"run","Package":"ex/a","Test":"TestTool"}
{"Action":"output","Package":"ex/a","Test":"TestTool","Output":"=== RUN   TestTool\n"}
{"Action":"output","Package":"ex/a","Test":"TestTool","Output":"    a_test.go:9: no Prometheus binary: run make tools\n"}
{"Action":"output","Package":"ex/a","Test":"TestTool","Output":"--- SKIP: TestTool (0.00s)\n"}
{"Action":"skip","Package":"ex/a","Test":"TestTool","Elapsed":0}
{"Action":"output","Package":"ex/a","Output":"PASS\n"}
{"Action":"output","Package":"ex/a","Output":"ok  \tex/a\t0.01s\n"}
{"Action":"pass","Package":"ex/a","Elapsed":0.01}
{"Action":"run","Package":"ex/b","Test":"TestBad"}
{"Action":"output","Package":"ex/b","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"ex/b","Test":"TestBad","Output":"    b_test.go:5: got 2, want 3\n"}
{"Action":"output","Package":"ex/b","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"ex/b","Test":"TestBad","Elapsed":0}
{"Action":"output","Package":"ex/b","Output":"FAIL\n"}
{"Action":"output","Package":"ex/b","Output":"FAIL\tex/b\t0.01s\n"}
{"Action":"fail","Package":"ex/b","Elapsed":0.01}
{"ImportPath":"ex/c","Action":"build-output","Output":"c.go:3:1: syntax error\n"}
{"ImportPath":"ex/c","Action":"build-fail"}
{"Action":"start","Package":"ex/c"}
{"Action":"output","Package":"ex/c","Output":"FAIL\tex/c [build failed]\n"}
{"Action":"fail","Package":"ex/c","Elapsed":0}
not json: go: some error
`

func TestCheck(t *testing.T) {
	var out strings.Builder
	r, err := check(strings.NewReader(events), &out)
	if err != nil {
		t.Fatal(err)
	}
	// go test's usual output: the passing test is silent, the failing
	// one shows its output, the build error and package lines show.
	want := "ok  \tex/a\t0.01s\n" +
		"=== RUN   TestBad\n    b_test.go:5: got 2, want 3\n--- FAIL: TestBad (0.00s)\n" +
		"FAIL\nFAIL\tex/b\t0.01s\n" +
		"c.go:3:1: syntax error\n" +
		"FAIL\tex/c [build failed]\n" +
		"not json: go: some error\n"
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	// TestBad, and package ex/c which failed without a failed test.
	if r.failed != 2 {
		t.Errorf("failed = %d, want 2", r.failed)
	}
	if len(r.skipped) != 1 || r.skipped[0].pkg != "ex/a" || r.skipped[0].test != "TestTool" ||
		strings.Join(r.skipped[0].output, "") != "a_test.go:9: no Prometheus binary: run make tools\n" {
		t.Errorf("skipped = %+v", r.skipped)
	}
	if r.ok() {
		t.Error("a run with a skip and failures is ok")
	}

	var b strings.Builder
	report(&b, r)
	if got := b.String(); !strings.Contains(got, "1 test(s) skipped") || !strings.Contains(got, "ex/a TestTool") ||
		!strings.Contains(got, "no Prometheus binary") || !strings.Contains(got, "2 test(s) or package(s) failed") {
		t.Errorf("report:\n%s", got)
	}
}

func TestCheckAllPass(t *testing.T) {
	in := `{"Action":"run","Package":"ex/a","Test":"TestOK"}
{"Action":"output","Package":"ex/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"ex/a","Test":"TestOK","Elapsed":0}
{"Action":"output","Package":"ex/a","Output":"ok  \tex/a\t0.01s\n"}
{"Action":"pass","Package":"ex/a","Elapsed":0.01}
`
	var out strings.Builder
	r, err := check(strings.NewReader(in), &out)
	if err != nil || !r.ok() || out.String() != "ok  \tex/a\t0.01s\n" {
		t.Errorf("check = %+v, %v; output %q", r, err, out.String())
	}
}
