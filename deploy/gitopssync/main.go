// Command gitopssync writes the manifests that install Sluice's GitOps and
// multi-cluster customizations from their Lua scripts: the argocd-cm patch
// (deploy/argocd/argocd-cm.yaml) and the Karmada
// ResourceInterpreterCustomizations (deploy/karmada/customizations.yaml).
// `make generate` runs it from the repository root; the packages' tests
// fail when a manifest is out of date.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/deploy/argocd"
	"github.com/sluicehq/sluice/deploy/karmada"
)

func main() {
	for _, f := range []struct {
		path string
		gen  func() ([]byte, error)
	}{
		{filepath.Join("deploy", "argocd", argocd.ConfigMapFile), argocd.ConfigMapYAML},
		{filepath.Join("deploy", "karmada", karmada.CustomizationsFile), karmada.CustomizationsYAML},
	} {
		raw, err := f.gen()
		if err == nil {
			err = os.WriteFile(f.path, raw, 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gitopssync: %s: %v\n", f.path, err)
			os.Exit(1)
		}
	}
}
