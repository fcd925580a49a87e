//go:build e2e

package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ModuleDir is the source folder of a module the repository requires, at
// the version go.mod names (go list -m).
func ModuleDir(module string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("module %s is not downloaded (run go mod download %s)", module, module)
	}
	return dir, nil
}

// InstallCRDFiles creates the CustomResourceDefinitions of the YAML files
// (other kinds in them are skipped) and waits until they are served.
func InstallCRDFiles(ctx context.Context, c client.Client, paths ...string) error {
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		objs, err := Objects(b)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(p), err)
		}
		for _, o := range objs {
			if o.GetKind() != "CustomResourceDefinition" {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, crd); err != nil {
				return fmt.Errorf("%s: %w", filepath.Base(p), err)
			}
			crds = append(crds, crd)
		}
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

// InstallGatewayAPI installs the Gateway API's standard CRDs, from the
// module go.mod requires.
func InstallGatewayAPI(ctx context.Context, c client.Client) error {
	gw, err := ModuleDir("sigs.k8s.io/gateway-api")
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(gw, "config", "crd", "standard", "gateway.networking.k8s.io_*.yaml"))
	if err != nil {
		return err
	}
	return InstallCRDFiles(ctx, c, files...)
}
