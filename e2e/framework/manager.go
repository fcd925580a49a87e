package framework

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/e2e/controlplane"
)

// Manager is a sluice-controller process in development mode.
type Manager struct {
	proc       *controlplane.Process
	binary     string
	args       []string
	dir        string
	MetricsURL string
	ReadyURL   string
}

// StartManager builds and starts sluice-controller against cp and waits
// until its webhooks are registered and it is ready. extraArgs are added to
// its command line (e.g. --prometheus-address=...).
func StartManager(ctx context.Context, cp *controlplane.ControlPlane, dir string, extraArgs ...string) (*Manager, error) {
	bin, err := BuildManager(dir)
	if err != nil {
		return nil, err
	}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	m := &Manager{
		binary:     bin,
		dir:        dir,
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
		ReadyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]),
		args: []string{
			"--kubeconfig=" + cp.KubeconfigPath(),
			"--dev-webhook-host=127.0.0.1",
			fmt.Sprintf("--webhook-port=%d", ports[0]),
			fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[1]),
			fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[2]),
			"--cert-dir=" + filepath.Join(dir, "certs"),
			"--zap-devel=false",
		},
	}
	m.args = append(m.args, extraArgs...)
	return m, m.Start(ctx, cp)
}

// Restart stops the process and starts it again with extraArgs added to
// its command line, on the same ports.
func (m *Manager) Restart(ctx context.Context, cp *controlplane.ControlPlane, extraArgs ...string) error {
	m.Stop()
	m.args = append(m.args, extraArgs...)
	return m.Start(ctx, cp)
}

// Start (re)starts the process and waits until it is ready and its
// webhooks are registered.
func (m *Manager) Start(ctx context.Context, cp *controlplane.ControlPlane) error {
	proc, err := controlplane.StartProcess("sluice-controller", m.binary, m.args, nil, m.dir, nil)
	if err != nil {
		return err
	}
	m.proc = proc
	if err := waitReady(ctx, m.ReadyURL, time.Minute); err != nil {
		return fmt.Errorf("sluice-controller not ready: %w\n%s", err, proc.LogTail())
	}
	c, err := client.New(cp.RESTConfig(), client.Options{Scheme: Scheme()})
	if err != nil {
		return err
	}
	return Poll(ctx, time.Minute, func() (bool, error) {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := c.Get(ctx, client.ObjectKey{Name: "sluice"}, cfg); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return len(cfg.Webhooks) > 0, nil
	})
}

// Stop stops the process (SIGTERM, then SIGKILL after a grace period).
func (m *Manager) Stop() {
	if m.proc != nil {
		m.proc.Stop()
	}
}

// Kill kills the process at once, as a crash would.
func (m *Manager) Kill() {
	if m.proc != nil {
		m.proc.Kill()
	}
}

// LogTail is the end of the manager's log, for failure messages.
func (m *Manager) LogTail() string {
	if m.proc == nil {
		return ""
	}
	return m.proc.LogTail()
}
