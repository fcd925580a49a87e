//go:build e2e

// Package devenv_test starts the development environment (devenv) as the
// playground does, and proves that environments started at the same time
// on one machine never take each other's ports, and that a process whose
// port was taken moves to another one instead of trusting whoever answers
// there.
package devenv_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/docs/examples"
	"github.com/sluicehq/sluice/e2e/framework"
)

// env is one development environment: what the playground starts.
type env struct {
	cp      *controlplane.ControlPlane
	prom    *controlplane.Prometheus
	manager *manager.Manager
	client  client.Client
}

func (e *env) stop() {
	if e.manager != nil {
		e.manager.Stop()
	}
	if e.prom != nil {
		_ = e.prom.Stop()
	}
	if e.cp != nil {
		_ = e.cp.Stop()
	}
}

// start starts a control plane, Sluice's CRDs, Prometheus and the manager
// pointed at it, in dir.
func start(ctx context.Context, dir string, command []string) (*env, error) {
	e := &env{}
	var err error
	if e.cp, err = controlplane.Start(ctx, controlplane.Options{Dir: filepath.Join(dir, "cluster"), Nodes: 1}); err != nil {
		return e, err
	}
	if e.client, err = client.New(e.cp.RESTConfig(), client.Options{Scheme: app.Scheme()}); err != nil {
		return e, err
	}
	if err := manager.InstallCRDs(ctx, e.client); err != nil {
		return e, err
	}
	if e.prom, err = controlplane.StartPrometheus(ctx, filepath.Join(dir, "prometheus"), controlplane.PrometheusOptions{}); err != nil {
		return e, err
	}
	e.manager, err = manager.Start(ctx, e.cp, filepath.Join(dir, "manager"), manager.Options{
		Command: command,
		Args:    []string{"--prometheus-address=" + e.prom.URL()},
	})
	return e, err
}

func port(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("%s: %v", rawURL, err)
	}
	return p
}

// registeredWebhookPort is the port of the URL the API server calls for
// the manager's validating webhooks.
func registeredWebhookPort(t *testing.T, e *env) int {
	t.Helper()
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := e.client.Get(t.Context(), client.ObjectKey{Name: "sluice"}, cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Webhooks) == 0 || cfg.Webhooks[0].ClientConfig.URL == nil {
		t.Fatalf("webhook configuration without URL: %+v", cfg.Webhooks)
	}
	return port(t, *cfg.Webhooks[0].ClientConfig.URL)
}

// Two environments started at the same moment (two playgrounds, two test
// packages) each get ports of their own, and each cluster calls its own
// manager.
func TestTwoEnvironmentsAtOnce(t *testing.T) {
	command, err := framework.BuildManager(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var envs [2]*env
	var errs [2]error
	var wg sync.WaitGroup
	for i := range envs {
		dir := t.TempDir()
		wg.Go(func() { envs[i], errs[i] = start(ctx, dir, command) })
	}
	wg.Wait()
	for i, e := range envs {
		t.Cleanup(e.stop)
		if errs[i] != nil {
			t.Fatalf("environment %d: %v", i, errs[i])
		}
	}

	owner := map[int]string{}
	for i, e := range envs {
		for what, p := range map[string]int{
			"kube-apiserver":     port(t, e.cp.APIServerURL()),
			"prometheus":         port(t, e.prom.URL()),
			"manager's webhooks": e.manager.WebhookPort(),
			"manager's metrics":  port(t, e.manager.MetricsURL()),
			"manager's health":   port(t, e.manager.ReadyURL()),
		} {
			who := fmt.Sprintf("environment %d's %s", i, what)
			if other, taken := owner[p]; taken {
				t.Errorf("port %d is both %s and %s", p, other, who)
			}
			owner[p] = who
		}
		if got, want := registeredWebhookPort(t, e), e.manager.WebhookPort(); got != want {
			t.Errorf("environment %d's cluster calls webhooks on port %d, its manager serves %d", i, got, want)
		}
		// Its admission webhook answers: a template is validated and stored.
		raw, err := examples.File("error-rate-template.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := manifest.Create(ctx, e.client, "default", raw); err != nil {
			t.Errorf("environment %d: %v", i, err)
		}
	}
}

// occupy holds port (free a moment ago) with a server that answers 200 to
// anything, as another program that took a freed port might, and returns
// whether it got it.
func occupy(t *testing.T, p int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		return false // taken by someone else already: just as good
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "foreign") })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return true
}

// A manager started again after its ports were taken (here by a server
// answering every request with 200, /readyz included) moves to new ports,
// is ready there, and registers its webhooks with the new port.
func TestManagerMovesOffTakenPorts(t *testing.T) {
	command, err := framework.BuildManager(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	e, err := start(ctx, t.TempDir(), command)
	t.Cleanup(e.stop)
	if err != nil {
		t.Fatal(err)
	}
	m := e.manager
	before := map[string]int{"webhook": m.WebhookPort(), "metrics": port(t, m.MetricsURL()), "health": port(t, m.ReadyURL())}
	m.Stop()
	for what, p := range before {
		if !occupy(t, p) {
			t.Logf("the %s port %d was taken before the test could", what, p)
		}
	}
	if err := m.Start(ctx, e.cp); err != nil {
		t.Fatal(err)
	}
	after := map[string]int{"webhook": m.WebhookPort(), "metrics": port(t, m.MetricsURL()), "health": port(t, m.ReadyURL())}
	for what, p := range after {
		if p == before[what] {
			t.Errorf("%s port %d kept although it was taken", what, p)
		}
	}
	resp, err := http.Get(m.ReadyURL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("%s: %s %q, want the manager's ok", m.ReadyURL(), resp.Status, body)
	}
	if got := registeredWebhookPort(t, e); got != after["webhook"] {
		t.Errorf("webhooks registered on port %d, the manager serves %d", got, after["webhook"])
	}
}

// A manager started before Sluice's CRDs are served (a Helm install or a
// test that creates them together with it) waits for them instead of
// exiting on "no matches for kind" (issue 10, defect 5), and works once
// they are there.
func TestManagerWaitsForItsCRDs(t *testing.T) {
	command, err := framework.BuildManager(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: filepath.Join(dir, "cluster"), Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	c, err := client.New(cp.RESTConfig(), client.Options{Scheme: app.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	var m *manager.Manager
	started := make(chan error, 1)
	go func() {
		var err error
		m, err = manager.Start(ctx, cp, filepath.Join(dir, "manager"), manager.Options{Command: command})
		started <- err
	}()
	// The manager runs and says it waits; only then do the CRDs come.
	logPath := filepath.Join(dir, "manager", "sluice-controller.log")
	if err := framework.Poll(ctx, time.Minute, func() (bool, error) {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "waiting for the API server to serve Sluice's CRDs"), nil
	}); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("the manager never said it waits for its CRDs: %v\n%s", err, b)
	}
	if err := manager.InstallCRDs(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := <-started; err != nil {
		t.Fatalf("the manager did not start once its CRDs were served: %v", err)
	}
	t.Cleanup(m.Stop)
	raw, err := examples.File("error-rate-template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.Create(ctx, c, "default", raw); err != nil {
		t.Errorf("its admission webhook does not answer: %v", err)
	}
}
