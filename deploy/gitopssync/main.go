// Command gitopssync writes the manifests that install Sluice's GitOps
// customizations from their Lua scripts: the argocd-cm patch
// (deploy/argocd/argocd-cm.yaml).
// `make generate` runs it from the repository root; the package's tests
// fail when a manifest is out of date.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluicehq/sluice/deploy/argocd"
)

func main() {
	for _, f := range []struct {
		path string
		gen  func() ([]byte, error)
	}{
		{filepath.Join("deploy", "argocd", argocd.ConfigMapFile), argocd.ConfigMapYAML},
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
