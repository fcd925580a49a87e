// Package manager runs sluice-controller, Sluice's manager, against a local
// control plane (devenv/controlplane), as the playground, the e2e tests and
// the benchmarks need it: in development mode (webhooks registered as
// https://127.0.0.1 URLs, certificates in files) unless asked to run as in
// a cluster, on ports no other process holds, ready when Start returns.
// It also installs what the manager needs first: Sluice's CRDs.
package manager

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/devenv/controlplane"
)

// readyTimeout bounds the wait for the manager to be ready and for its
// webhooks to be registered.
const readyTimeout = time.Minute

// Manager is a running sluice-controller process.
type Manager struct {
	command           []string
	args              []string
	dir               string
	log               io.Writer
	fixedWebhookPort  bool
	serviceWebhooks   bool
	webhookConfigName string

	proc  *controlplane.Process
	ports ports
}

// ports are the manager's listening ports.
type ports struct{ webhook, metrics, health int }

// Options say how Start runs sluice-controller.
type Options struct {
	// Command runs sluice-controller: a binary and the arguments that come
	// before the manager's own. The playground gives its own executable and
	// the subcommand that calls app.Run; the e2e tests a binary built from
	// the source tree. Required.
	Command []string
	// Kubeconfig the manager authenticates with; default the control
	// plane's admin kubeconfig.
	Kubeconfig string
	// WebhookPort the webhooks are served on; default a free port. Set it
	// only when something outside must know the port before the start (a
	// Service leading to it).
	WebhookPort int
	// ServiceWebhooks runs the manager as in a cluster: it registers its
	// webhooks as the Service --webhook-service-name:--webhook-service-port
	// in --namespace and keeps its certificates in a Secret there, instead
	// of development mode's https://127.0.0.1 URLs and files. The caller
	// makes that Service lead here (an ExternalName Service of localhost,
	// whose port is WebhookPort).
	ServiceWebhooks bool
	// WebhookConfigurationName is the configuration Start waits for
	// (default sluice, the manager's default).
	WebhookConfigurationName string
	// Args are added to the command line.
	Args []string
	// Log, when not nil, also receives the manager's output, each line
	// prefixed with "[sluice-controller] ".
	Log io.Writer
}

// Start starts sluice-controller against cp, with its files and log in
// dir, and waits until it is ready and its webhooks are registered.
func Start(ctx context.Context, cp *controlplane.ControlPlane, dir string, o Options) (*Manager, error) {
	if len(o.Command) == 0 {
		return nil, fmt.Errorf("manager.Start: Options.Command is required")
	}
	if o.Kubeconfig == "" {
		o.Kubeconfig = cp.KubeconfigPath()
	}
	if o.WebhookConfigurationName == "" {
		o.WebhookConfigurationName = "sluice"
	}
	m := &Manager{
		command:           o.Command,
		dir:               dir,
		log:               o.Log,
		fixedWebhookPort:  o.WebhookPort != 0,
		serviceWebhooks:   o.ServiceWebhooks,
		webhookConfigName: o.WebhookConfigurationName,
		ports:             ports{webhook: o.WebhookPort},
		args: []string{
			"--kubeconfig=" + o.Kubeconfig,
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
// its command line, on the same ports when they are still free.
func (m *Manager) Restart(ctx context.Context, cp *controlplane.ControlPlane, extraArgs ...string) error {
	m.Stop()
	m.args = append(m.args, extraArgs...)
	return m.Start(ctx, cp)
}

// Start (re)starts the process and waits until it is ready and its
// webhooks are registered with its CA; on error the process is stopped. It
// tries the ports of the last start first; when one was taken meanwhile it
// moves to new ones (see controlplane.StartListening), so read MetricsURL
// after it.
func (m *Manager) Start(ctx context.Context, cp *controlplane.ControlPlane) error {
	// The ports chosen here: metrics and health, and the webhook's unless
	// it is fixed. A fixed webhook port shows through readiness instead:
	// the webhook check passes once this process serves on it.
	prefer := []int{m.ports.metrics, m.ports.health, m.ports.webhook}
	n := 3
	if m.fixedWebhookPort {
		n = 2
	}
	proc, got, err := controlplane.StartListening(ctx, n, prefer[:n], func(p []int) (*controlplane.Process, error) {
		next := ports{metrics: p[0], health: p[1], webhook: m.ports.webhook}
		if !m.fixedWebhookPort {
			next.webhook = p[2]
		}
		args := append(append([]string(nil), m.command[1:]...), m.args...)
		args = append(args,
			fmt.Sprintf("--webhook-port=%d", next.webhook),
			fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", next.metrics),
			fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", next.health),
		)
		return controlplane.StartProcess("sluice-controller", m.command[0], args, nil, m.dir, m.log)
	})
	if err != nil {
		return fmt.Errorf("sluice-controller: %w", err)
	}
	m.proc = proc
	m.ports.metrics, m.ports.health = got[0], got[1]
	if !m.fixedWebhookPort {
		m.ports.webhook = got[2]
	}
	if err := m.waitReady(ctx, cp); err != nil {
		proc.Stop()
		return fmt.Errorf("sluice-controller not ready: %w\n%s", err, proc.LogTail())
	}
	return nil
}

// waitReady waits until /readyz answers (the health port is known to be
// this process's) and the manager has registered its webhooks and the
// Rollout conversion (see registered).
func (m *Manager) waitReady(ctx context.Context, cp *controlplane.ControlPlane) error {
	alive := func() error {
		if done, _ := m.proc.Exited(); done {
			return m.proc.ExitError()
		}
		return nil
	}
	err := controlplane.WaitFor(ctx, readyTimeout, func() (bool, error) {
		if err := alive(); err != nil {
			return false, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ReadyURL(), nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return err
	}
	c, err := client.New(cp.RESTConfig(), client.Options{Scheme: app.Scheme()})
	if err != nil {
		return err
	}
	var missing string
	err = controlplane.WaitFor(ctx, readyTimeout, func() (bool, error) {
		if err := alive(); err != nil {
			return false, err
		}
		missing, err = m.registered(ctx, c)
		return missing == "", err
	})
	if err != nil {
		return fmt.Errorf("%s not registered: %w", missing, err)
	}
	return nil
}

// convertedCRD is the CRD whose conversion the manager serves.
const convertedCRD = "rollouts.rollouts.kruise.io"

// registered names the first of the manager's registrations that is not
// in place yet (the validating and the mutating webhooks, then the
// conversion, the order in which the manager writes them), or "". In place
// means with a CA bundle and, in development mode, calling this manager's
// webhook port: after a restart on new ports the previous registration is
// still there, pointing at the old one.
func (m *Manager) registered(ctx context.Context, c client.Client) (string, error) {
	here := func(url *string, caBundle []byte) bool {
		if len(caBundle) == 0 {
			return false // a configuration installed beforehand (the chart's) has none until the manager registers
		}
		if m.serviceWebhooks {
			return true
		}
		return url != nil && strings.HasPrefix(*url, fmt.Sprintf("https://127.0.0.1:%d/", m.ports.webhook))
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: m.webhookConfigName}, validating); err != nil {
		return "the validating webhooks", client.IgnoreNotFound(err)
	}
	for _, w := range validating.Webhooks {
		if !here(w.ClientConfig.URL, w.ClientConfig.CABundle) {
			return "the validating webhooks", nil
		}
	}
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: m.webhookConfigName}, mutating); err != nil {
		return "the mutating webhooks", client.IgnoreNotFound(err)
	}
	for _, w := range mutating.Webhooks {
		if !here(w.ClientConfig.URL, w.ClientConfig.CABundle) {
			return "the mutating webhooks", nil
		}
	}
	if len(validating.Webhooks) == 0 || len(mutating.Webhooks) == 0 {
		return "the webhooks", nil
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := c.Get(ctx, client.ObjectKey{Name: convertedCRD}, crd); err != nil {
		return "the conversion of " + convertedCRD, client.IgnoreNotFound(err)
	}
	if conv := crd.Spec.Conversion; conv == nil || conv.Webhook == nil || conv.Webhook.ClientConfig == nil ||
		!here(conv.Webhook.ClientConfig.URL, conv.Webhook.ClientConfig.CABundle) {
		return "the conversion of " + convertedCRD, nil
	}
	return "", nil
}

// MetricsURL is the manager's /metrics, http://127.0.0.1:PORT/metrics. The
// port can change when the manager is started again.
func (m *Manager) MetricsURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/metrics", m.ports.metrics)
}

// Metrics reads the manager's /metrics, in Prometheus' text format.
func (m *Manager) Metrics(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.MetricsURL(), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", m.MetricsURL(), resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// MetricFamilies reads the manager's /metrics, parsed.
func (m *Manager) MetricFamilies(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	text, err := m.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(strings.NewReader(text))
}

// MetricsAddress is host:port of MetricsURL, a Prometheus scrape target.
func (m *Manager) MetricsAddress() string { return fmt.Sprintf("127.0.0.1:%d", m.ports.metrics) }

// WebhookPort is the port the webhooks are served on (127.0.0.1 in
// development mode).
func (m *Manager) WebhookPort() int { return m.ports.webhook }

// ReadyURL is the manager's /readyz.
func (m *Manager) ReadyURL() string { return fmt.Sprintf("http://127.0.0.1:%d/readyz", m.ports.health) }

// PID is the process id of the running manager.
func (m *Manager) PID() int {
	if m.proc == nil {
		return 0
	}
	return m.proc.PID()
}

// Exited reports whether the process started last has exited: killed,
// crashed, or ended by itself (a manager that loses its leader election
// exits); the error says how, with the end of its log. A supervisor
// starts it again with Start.
func (m *Manager) Exited() (bool, error) {
	if m.proc == nil {
		return false, nil
	}
	if done, _ := m.proc.Exited(); !done {
		return false, nil
	}
	return true, m.proc.ExitError()
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
