// Package examples holds the manifests of docs/examples, embedded so that
// programs (the playground's demo) apply them without a source tree: the
// Kruise guide's examples (guide/) and Sluice's analysis of Example 1.
package examples

import (
	"embed"
	"fmt"
)

//go:embed *.yaml guide/*.yaml
var files embed.FS

// File returns the manifest at name, relative to docs/examples (e.g.
// "guide/echoserver.yaml").
func File(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("docs/examples: %w", err)
	}
	return b, nil
}
