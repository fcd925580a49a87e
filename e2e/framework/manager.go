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

// Manager is a sluice-controller process, in development mode unless
// started with ManagerOptions.ServiceWebhooks.
type Manager struct {
	proc              *controlplane.Process
	binary            string
	args              []string
	dir               string
	webhookConfigName string
	MetricsURL        string
	ReadyURL          string
}

// ManagerOptions say how StartManagerWith runs sluice-controller.
type ManagerOptions struct {
	// Kubeconfig the manager authenticates with; default the control
	// plane's admin kubeconfig.
	Kubeconfig string
	// WebhookPort the webhooks are served on; default a free port.
	WebhookPort int
	// ServiceWebhooks runs the manager as in a cluster: it registers its
	// webhooks as the Service --webhook-service-name:--webhook-service-port
	// in --namespace and keeps its certificates in a Secret there, instead
	// of development mode's https://127.0.0.1 URLs and files. The test
	// makes that Service lead here (an ExternalName Service of localhost,
	// whose port is WebhookPort).
	ServiceWebhooks bool
	// WebhookConfigurationName is the configuration Start waits for
	// (default sluice, the manager's default).
	WebhookConfigurationName string
	// Args are added to the command line.
	Args []string
}

// StartManager builds and starts sluice-controller against cp and waits
// until its webhooks are registered and it is ready. extraArgs are added to
// its command line (e.g. --prometheus-address=...).
func StartManager(ctx context.Context, cp *controlplane.ControlPlane, dir string, extraArgs ...string) (*Manager, error) {
	return StartManagerWith(ctx, cp, dir, ManagerOptions{Args: extraArgs})
}

// StartManagerWith is StartManager with options.
func StartManagerWith(ctx context.Context, cp *controlplane.ControlPlane, dir string, o ManagerOptions) (*Manager, error) {
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
	if o.WebhookPort != 0 {
		ports[0] = o.WebhookPort
	}
	if o.Kubeconfig == "" {
		o.Kubeconfig = cp.KubeconfigPath()
	}
	if o.WebhookConfigurationName == "" {
		o.WebhookConfigurationName = "sluice"
	}
	m := &Manager{
		binary:            bin,
		dir:               dir,
		webhookConfigName: o.WebhookConfigurationName,
		MetricsURL:        fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]),
		ReadyURL:          fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]),
		args: []string{
			"--kubeconfig=" + o.Kubeconfig,
			fmt.Sprintf("--webhook-port=%d", ports[0]),
			fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[1]),
			fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[2]),
			"--cert-dir=" + filepath.Join(dir, "certs"),
			"--zap-devel=false",
		},
	}
	if !o.ServiceWebhooks {
		m.args = append(m.args, "--dev-webhook-host=127.0.0.1")
	}
	m.args = append(m.args, o.Args...)
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
// webhooks are registered with its CA.
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
		if err := c.Get(ctx, client.ObjectKey{Name: m.webhookConfigName}, cfg); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		// A configuration installed beforehand (by the Helm chart) has
		// no caBundle until the manager registers.
		for _, w := range cfg.Webhooks {
			if len(w.ClientConfig.CABundle) == 0 {
				return false, nil
			}
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

// LogPath is the manager's whole log (every start appends to it).
func (m *Manager) LogPath() string { return filepath.Join(m.dir, "sluice-controller.log") }

// LogTail is the end of the manager's log, for failure messages.
func (m *Manager) LogTail() string {
	if m.proc == nil {
		return ""
	}
	return m.proc.LogTail()
}
