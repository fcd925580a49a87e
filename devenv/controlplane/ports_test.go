package controlplane

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// serveEnv makes the test binary a child server for the tests of
// startListening: it listens on 127.0.0.1:$serveEnv and answers "child",
// or exits 3 when the value is "fail".
const serveEnv = "CONTROLPLANE_TEST_SERVE"

func TestMain(m *testing.M) {
	if port := os.Getenv(serveEnv); port != "" {
		serveChild(port)
		return
	}
	os.Exit(m.Run())
}

func serveChild(port string) {
	if port == "fail" {
		fmt.Fprintln(os.Stderr, "child: configuration is broken")
		os.Exit(3)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err) // "... bind: address already in use"
		os.Exit(1)
	}
	_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "child") }))
}

// startChild starts the test binary as a child server on ports[0].
func startChild(t *testing.T, logDir string, port string) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return startProcess("child", self, nil, []string{serveEnv + "=" + port}, logDir, nil)
}

// foreign listens on a free port of 127.0.0.1 and answers every request
// with 200 "foreign": another program holding the port a component was
// given, and answering its readiness check as a component would.
func foreign(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "foreign") })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func get(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A process given a port that another program took meanwhile is started
// again on a new port, and is not fooled by the other program answering.
func TestStartListeningMovesOffATakenPort(t *testing.T) {
	taken := foreign(t)
	logDir := t.TempDir()
	var tried []int
	p, ports, err := startListening(t.Context(), 1, []int{taken}, func(ports []int) (*process, error) {
		tried = append(tried, ports[0])
		return startChild(t, logDir, strconv.Itoa(ports[0]))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(stopGrace) })
	if len(tried) != 2 || tried[0] != taken || ports[0] == taken || ports[0] != tried[1] {
		t.Fatalf("tried ports %v, got %v; want the taken port %d first, then a new one", tried, ports, taken)
	}
	if got := get(t, ports[0]); got != "child" {
		t.Errorf("port %d answers %q, want the child", ports[0], got)
	}
	if got := get(t, taken); got != "foreign" {
		t.Errorf("the taken port %d answers %q, want its owner", taken, got)
	}
	log, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "address already in use") || strings.Count(string(log), "==> ") != 2 {
		t.Errorf("log of the two attempts:\n%s", log)
	}
}

// A process that fails for another reason is not started again.
func TestStartListeningStopsOnOtherFailures(t *testing.T) {
	attempts := 0
	_, _, err := startListening(t.Context(), 1, nil, func([]int) (*process, error) {
		attempts++
		return startChild(t, t.TempDir(), "fail")
	})
	if err == nil || errors.Is(err, ErrAddressInUse) || !strings.Contains(err.Error(), "configuration is broken") || attempts != 1 {
		t.Errorf("after %d attempts: %v; want one attempt and the child's error", attempts, err)
	}
}

func TestListensOn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if ok, err := listensOn(os.Getpid(), port); err != nil || !ok {
		t.Errorf("listensOn(self, %d) = %v, %v while listening", port, ok, err)
	}
	l.Close()
	if ok, err := listensOn(os.Getpid(), port); err != nil || ok {
		t.Errorf("listensOn(self, %d) = %v, %v after closing the listener", port, ok, err)
	}
	// Another process's listener is not this process's.
	other := foreign(t)
	if ok, _ := listensOn(os.Getppid(), other); ok {
		t.Errorf("listensOn(parent, %d): the parent does not hold this test's listener", other)
	}
}
