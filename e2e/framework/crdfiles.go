//go:build e2e

package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/devenv/manifest"
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
		objs, err := manifest.Objects(b)
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
	return manifest.InstallCRDs(ctx, c, crds...)
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
