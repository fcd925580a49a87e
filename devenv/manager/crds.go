package manager

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/deploy"
	"github.com/sluicehq/sluice/devenv/manifest"
)

// InstallCRDs creates Sluice's CRDs (deploy/crds, embedded in the binary)
// and waits until the API server serves them.
func InstallCRDs(ctx context.Context, c client.Client) error {
	crds, err := deploy.CRDs()
	if err != nil {
		return err
	}
	return manifest.InstallCRDs(ctx, c, crds...)
}
