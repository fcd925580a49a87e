//go:build e2e

// Package framework runs what every e2e test binary needs, from the
// development environment's parts (devenv): one local control plane with
// Sluice's CRDs installed and one sluice-controller process, built from this
// source tree, in development mode with its webhooks registered; optionally
// the application-metrics simulator and a Prometheus scraping it. Each test
// then takes its own namespace (Env.Namespace).
package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/e2e/invariants"
)

// Env is the shared environment of one e2e test binary.
type Env struct {
	ControlPlane *controlplane.ControlPlane
	// Client reads and writes every kind Sluice knows, as admin.
	Client client.Client
	// Manager is the running sluice-controller.
	Manager *manager.Manager
	// ManagerOptions are the options Manager was started with (its
	// Command, built from this tree, included): a test starts another
	// replica with them.
	ManagerOptions manager.Options
	dir            string
	cleanups       []func()
}

// Options change what StartWithOptions sets up.
type Options struct {
	// Metrics also runs the application-metrics simulator and a Prometheus
	// scraping it, and points the manager at that Prometheus.
	Metrics bool
	// Integrations, with Metrics, makes the simulator also serve the
	// series of ingress-nginx, Istio, Envoy Gateway, OpenTelemetry and
	// kube-state-metrics for the simulated pods (devenv/simulator).
	Integrations bool
	// Install, when set, installs Sluice once the control plane (and the
	// metrics) run, instead of InstallCRDs, and says how to run the
	// manager (its Command is set here). mt is nil without Metrics.
	// Without Install the manager runs as admin in development mode.
	Install func(ctx context.Context, e *Env, mt *Metrics) (manager.Options, error)
	// ManagerCommand, when set, makes the sluice-controller binary the
	// manager runs (manager.Options.Command), with dir for its files,
	// instead of BuildManager: e2e/image runs the one inside the image.
	ManagerCommand func(ctx context.Context, dir string) ([]string, error)
	// Nodes is the number of simulated nodes (110 pods each; default: the
	// control plane's, 3): DaemonSets run one pod on each, the fleet
	// benchmark needs room for thousands of pods.
	Nodes int
	// Setup runs on the environment before the tests (as MainWith's).
	Setup func(ctx context.Context, e *Env) error
}

// Main is TestMain for an e2e package: it starts the environment, runs the
// tests and stops everything, whatever the tests did.
func Main(m *testing.M, env **Env) { MainWith(m, env, nil) }

// MainWith is Main with setup run on the environment before the tests
// (extra CRDs, a manager restart); nil means none.
func MainWith(m *testing.M, env **Env, setup func(context.Context, *Env) error) {
	os.Exit(run(m, Options{}, env, nil, setup))
}

// MainWithMetrics is Main for packages that measure applications: the
// environment also runs the simulator and Prometheus, and the manager
// points at that Prometheus.
func MainWithMetrics(m *testing.M, env **Env, metrics **Metrics) {
	os.Exit(run(m, Options{Metrics: true}, env, metrics, nil))
}

// MainWithOptions is Main with Options; metrics is set when o.Metrics is.
func MainWithOptions(m *testing.M, o Options, env **Env, metrics **Metrics) {
	os.Exit(run(m, o, env, metrics, nil))
}

func run(m *testing.M, o Options, env **Env, metrics **Metrics, setup func(context.Context, *Env) error) int {
	if setup == nil {
		setup = o.Setup
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, mt, err := StartWithOptions(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e environment:", err)
		return 1
	}
	defer e.Stop()
	if mt != nil {
		defer mt.Stop()
	}
	if setup != nil {
		if err := setup(ctx, e); err != nil {
			fmt.Fprintln(os.Stderr, "e2e setup:", err)
			return 1
		}
	}
	*env = e
	if metrics != nil {
		*metrics = mt
	}
	return m.Run()
}

// StartWithOptions starts the control plane, the metrics when asked,
// installs Sluice and starts the manager.
func StartWithOptions(ctx context.Context, o Options) (_ *Env, _ *Metrics, err error) {
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		return nil, nil, err
	}
	// The tests' client logs nothing but API warnings (deprecated Ingress
	// annotations of the guide's manifests); without a logger
	// controller-runtime prints a stack trace for each.
	ctrllog.SetLogger(logr.Discard())
	e := &Env{dir: dir}
	var mt *Metrics
	defer func() {
		if err != nil {
			if mt != nil {
				mt.Stop()
			}
			e.Stop()
		}
	}()
	start := time.Now()
	if e.ControlPlane, err = controlplane.Start(ctx, controlplane.Options{Dir: filepath.Join(dir, "cluster"), ExtraStages: Stages(), Nodes: o.Nodes}); err != nil {
		return nil, nil, err
	}
	if e.Client, err = client.New(e.ControlPlane.RESTConfig(), client.Options{Scheme: app.Scheme()}); err != nil {
		return nil, nil, err
	}
	if o.Metrics {
		mt = &Metrics{}
		if err := mt.start(ctx, e.ControlPlane, filepath.Join(dir, "prometheus"), o.Integrations, e.Client); err != nil {
			return nil, nil, err
		}
	}
	var mo manager.Options
	if o.Install != nil {
		if mo, err = o.Install(ctx, e, mt); err != nil {
			return nil, nil, fmt.Errorf("installing Sluice: %w", err)
		}
	} else {
		if err := manager.InstallCRDs(ctx, e.Client); err != nil {
			return nil, nil, err
		}
		if mt != nil {
			mo.Args = append(mo.Args, "--prometheus-address="+mt.Prometheus.URL())
		}
	}
	build := o.ManagerCommand
	if build == nil {
		build = func(_ context.Context, dir string) ([]string, error) { return BuildManager(dir) }
	}
	if mo.Command, err = build(ctx, dir); err != nil {
		return nil, nil, err
	}
	e.ManagerOptions = mo
	if e.Manager, err = manager.Start(ctx, e.ControlPlane, filepath.Join(dir, "manager"), mo); err != nil {
		return nil, nil, err
	}
	what := "e2e environment"
	if mt != nil {
		what += " with Prometheus " + mt.Prometheus.URL()
	}
	fmt.Fprintf(os.Stderr, "%s ready in %s (logs in %s)\n", what, time.Since(start).Round(time.Millisecond), dir)
	return e, mt, nil
}

// Dir holds the environment's files and logs.
func (e *Env) Dir() string { return e.dir }

// Stop stops the manager and the control plane. The logs are kept when
// SLUICE_E2E_KEEP is set.
func (e *Env) Stop() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	if e.Manager != nil {
		e.Manager.Stop()
	}
	if e.ControlPlane != nil {
		_ = e.ControlPlane.Stop()
	}
	if os.Getenv("SLUICE_E2E_KEEP") == "" {
		_ = os.RemoveAll(e.dir)
	}
}

// AddCleanup runs f when the environment stops, before the manager and
// the control plane (last added, first run): for what setup started, such
// as a stand-in for another project's controllers.
func (e *Env) AddCleanup(f func()) { e.cleanups = append(e.cleanups, f) }

// Namespace creates a namespace for one test, deleted when it ends, and
// runs the invariant checker on it (e2e/invariants): a violation of
// Sluice's safety invariants fails the test. opts tune the checker (a test
// that breaks a rule on purpose says so with invariants.Allowing, or
// counts with invariants.ReportOnly and invariants.Handle);
// SLUICE_E2E_INVARIANTS=off turns it off.
func (e *Env) Namespace(t testing.TB, opts ...invariants.Option) string {
	ns := NewNamespace(t, e.ControlPlane)
	if os.Getenv("SLUICE_E2E_INVARIANTS") != "off" {
		invariants.Start(t.Context(), t, e.ControlPlane.RESTConfig(), ns, opts...)
	}
	return ns
}

// Poll calls cond every 100ms until it returns true, returns an error, or
// timeout passes.
func Poll(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("condition not met within %s", timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ConflictRetry is how a test retries a read-modify-write that lost to a
// controller writing the same object: client-go's DefaultRetry gives up
// after about 50ms, shorter than one busy reconcile on a loaded machine;
// this one keeps trying for about ten seconds.
var ConflictRetry = wait.Backoff{Steps: 12, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.2, Cap: 2 * time.Second}

// RepoRoot is the root of the Sluice repository.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BuildManager compiles sluice-controller from this source tree into dir
// and returns the command that runs it (manager.Options.Command).
func BuildManager(dir string) ([]string, error) {
	out := filepath.Join(dir, "sluice-controller")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/sluice-controller")
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building sluice-controller: %v\n%s", err, b)
	}
	return []string{out}, nil
}
