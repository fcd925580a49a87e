package app

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/deploy"
)

// The manager applies the ready-made ClusterAnalysisTemplates itself, once
// its webhooks answer: a chart that created them would have them admitted
// by a webhook whose pods are not up yet (Helm creates custom resources
// after the webhook configurations), and the install would fail.
// +kubebuilder:rbac:groups=analysis.sluice.dev,resources=clusteranalysistemplates,verbs=create;patch

// templateInstaller server-side applies the chosen ready-made templates.
type templateInstaller struct {
	client client.Client
	// integrations are the files of deploy/analysis, without .yaml.
	integrations []string
	log          logr.Logger
}

// readyMadeTemplates parses --install-analysis-templates: "all", or
// integrations by name (ingress-nginx,istio); an unknown name is an error
// that lists the known ones.
func readyMadeTemplates(flag string) ([]*analysisv1alpha1.ClusterAnalysisTemplate, error) {
	if strings.TrimSpace(flag) == "" {
		return nil, nil
	}
	files, err := deploy.AnalysisTemplates()
	if err != nil {
		return nil, err
	}
	var known []string
	for f := range files {
		known = append(known, strings.TrimSuffix(f, ".yaml"))
	}
	sort.Strings(known)
	want := known
	if flag != "all" {
		want = nil
		for _, name := range strings.Split(flag, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(known, name) {
				return nil, fmt.Errorf("--install-analysis-templates: no integration %q (want all, or some of %s)", name, strings.Join(known, ","))
			}
			want = append(want, name)
		}
	}
	var out []*analysisv1alpha1.ClusterAnalysisTemplate
	for _, name := range want {
		out = append(out, files[name+".yaml"]...)
	}
	return out, nil
}

// Start applies the templates, retrying with backoff until the API server
// takes them (its webhook may not be registered yet) or ctx ends.
func (t *templateInstaller) Start(ctx context.Context) error {
	templates, err := readyMadeTemplates(strings.Join(t.integrations, ","))
	if err != nil {
		return err
	}
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Cap: 30 * time.Second, Steps: 1 << 30}
	for _, tpl := range templates {
		err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
			obj := tpl.DeepCopy()
			obj.SetGroupVersionKind(analysisv1alpha1.GroupVersion.WithKind("ClusterAnalysisTemplate"))
			if err := t.client.Patch(ctx, obj, client.Apply, client.FieldOwner("sluice-controller"), client.ForceOwnership); err != nil {
				t.log.Info("applying a ready-made ClusterAnalysisTemplate, will retry", "name", tpl.Name, "error", err.Error())
				return false, nil
			}
			return true, nil
		})
		if err != nil {
			return nil // stopping
		}
	}
	t.log.Info("ready-made ClusterAnalysisTemplates applied", "count", len(templates), "integrations", t.integrations)
	<-ctx.Done()
	return nil
}
