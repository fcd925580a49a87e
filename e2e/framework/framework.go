// Package framework runs what every e2e test binary needs: one local
// control plane (e2e/controlplane) with Sluice's CRDs installed and one
// sluice-controller process in development mode, its webhooks registered.
// Each test then takes its own namespace.
package framework

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/deploy"
	"github.com/sluicehq/sluice/e2e/controlplane"
	"github.com/sluicehq/sluice/e2e/invariants"
)

// Env is the shared environment of one e2e test binary.
type Env struct {
	ControlPlane *controlplane.ControlPlane
	// Client reads and writes every kind Sluice knows, as admin.
	Client client.Client
	// Manager is the running sluice-controller.
	Manager  *Manager
	dir      string
	cleanups []func()
}

// Scheme knows the built-in kinds and Sluice's.
func Scheme() *kruntime.Scheme {
	s := kruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	utilruntime.Must(v1beta1.AddToScheme(s))
	utilruntime.Must(analysisv1alpha1.AddToScheme(s))
	return s
}

// Main is TestMain for an e2e package: it starts the environment, runs the
// tests and stops everything, whatever the tests did.
func Main(m *testing.M, env **Env) { MainWith(m, env, nil) }

// MainWith is Main with setup run on the environment before the tests
// (extra CRDs, a manager restart); nil means none.
func MainWith(m *testing.M, env **Env, setup func(context.Context, *Env) error) {
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		e, err := Start(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e environment:", err)
			return 1
		}
		defer e.Stop()
		if setup != nil {
			if err := setup(ctx, e); err != nil {
				fmt.Fprintln(os.Stderr, "e2e setup:", err)
				return 1
			}
		}
		*env = e
		return m.Run()
	}())
}

// Start starts the control plane, installs the CRDs and starts the manager.
func Start(ctx context.Context) (_ *Env, err error) {
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		return nil, err
	}
	// The tests' client logs nothing but API warnings (deprecated Ingress
	// annotations of the guide's manifests); without a logger
	// controller-runtime prints a stack trace for each.
	ctrllog.SetLogger(logr.Discard())
	e := &Env{dir: dir}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	start := time.Now()
	if e.ControlPlane, err = controlplane.Start(ctx, controlplane.Options{Dir: filepath.Join(dir, "cluster"), ExtraStages: Stages()}); err != nil {
		return nil, err
	}
	if e.Client, err = client.New(e.ControlPlane.RESTConfig(), client.Options{Scheme: Scheme()}); err != nil {
		return nil, err
	}
	if err := InstallCRDs(ctx, e.Client); err != nil {
		return nil, err
	}
	if e.Manager, err = StartManager(ctx, e.ControlPlane, filepath.Join(dir, "manager")); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "e2e environment ready in %s (logs in %s)\n", time.Since(start).Round(time.Millisecond), dir)
	return e, nil
}

// Dir holds the environment's files and logs.
func (e *Env) Dir() string { return e.dir }

// AddCleanup runs f when the environment stops, before the manager and
// the control plane (last added, first run): for what setup started, such
// as a stand-in for another project's controllers.
func (e *Env) AddCleanup(f func()) { e.cleanups = append(e.cleanups, f) }

// Stop stops what setup started, the manager and the control plane. The
// logs are kept when SLUICE_E2E_KEEP is set.
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

// Namespace creates a namespace for one test, deleted when it ends, and
// runs the invariant checker on it (e2e/invariants): a violation of
// Sluice's safety invariants fails the test. opts tune the checker (a test
// that breaks a rule on purpose says so with invariants.Allowing, or
// counts with invariants.ReportOnly and invariants.Handle);
// SLUICE_E2E_INVARIANTS=off turns it off.
func (e *Env) Namespace(t testing.TB, opts ...invariants.Option) string {
	ns := e.ControlPlane.NewNamespace(t)
	if os.Getenv("SLUICE_E2E_INVARIANTS") != "off" {
		invariants.Start(t.Context(), t, e.ControlPlane.RESTConfig(), ns, opts...)
	}
	return ns
}

// InstallCRDs creates Sluice's CRDs (as deploy/crds has them) and waits
// until the API server serves them.
func InstallCRDs(ctx context.Context, c client.Client) error {
	crds, err := deploy.CRDs()
	if err != nil {
		return err
	}
	for _, crd := range crds {
		if err := c.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		if err := Poll(ctx, time.Minute, func() (bool, error) {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKey{Name: crd.Name}, got); err != nil {
				return false, err
			}
			for _, cond := range got.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		}); err != nil {
			return fmt.Errorf("CRD %s not established: %w", crd.Name, err)
		}
	}
	return nil
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

// RepoRoot is the root of the Sluice repository.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BuildManager compiles sluice-controller into dir.
func BuildManager(dir string) (string, error) {
	out := filepath.Join(dir, "sluice-controller")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/sluice-controller")
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building sluice-controller: %v\n%s", err, b)
	}
	return out, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	return Poll(ctx, timeout, func() (bool, error) {
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}
