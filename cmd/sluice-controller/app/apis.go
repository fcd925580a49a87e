package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// servedAPIs are the group versions the manager needs served before it
// starts its controllers and webhooks.
var servedAPIs = []schema.GroupVersionKind{
	v1beta1.GroupVersion.WithKind("Rollout"),
	v1alpha1.GroupVersion.WithKind("TrafficRouting"),
	analysisv1alpha1.GroupVersion.WithKind("AnalysisRun"),
}

// waitForAPIs waits until the API server serves Sluice's kinds: started
// together with its CRDs (a Helm install, a test), the manager would
// otherwise fail on "no matches for kind" and exit. It returns the
// OpenKruise kinds served (read at start: a restart picks up OpenKruise
// installed later).
func waitForAPIs(ctx context.Context, cfg *rest.Config, log logr.Logger) ([]schema.GroupVersionKind, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		got := served(dc, servedAPIs)
		if missing := slices.DeleteFunc(slices.Clone(servedAPIs), func(gvk schema.GroupVersionKind) bool {
			return slices.Contains(got, gvk)
		}); len(missing) > 0 {
			if !waited {
				log.Info("waiting for the API server to serve Sluice's CRDs", "missing", missing[0].String())
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%s is not served (are Sluice's CRDs installed?): %w", missing[0], ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if waited {
			log.Info("the API server serves Sluice's kinds now")
		}
		return served(dc, workload.KruiseKinds), nil
	}
}

// served returns the kinds among gvks that the API server serves.
func served(dc discovery.DiscoveryInterface, gvks []schema.GroupVersionKind) []schema.GroupVersionKind {
	var out []schema.GroupVersionKind
	for _, gvk := range gvks {
		list, err := dc.ServerResourcesForGroupVersion(gvk.GroupVersion().String())
		if err == nil && slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Kind == gvk.Kind }) {
			out = append(out, gvk)
		}
	}
	return out
}
