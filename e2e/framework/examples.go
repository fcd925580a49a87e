//go:build e2e

package framework

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/docs/examples"
)

// CreateExample1 creates the guide's Example 1 with Sluice's analysis in a
// namespace: the echoserver Deployment (5 pods) and Service, its Nginx
// Ingress, the error-rate AnalysisTemplate and the Rollout of
// docs/examples. template, when given, replaces the AnalysisTemplate.
func CreateExample1(ctx context.Context, c client.Client, namespace, template string) error {
	files := []string{"guide/echoserver.yaml", "guide/example1-ingress.yaml"}
	if template == "" {
		files = append(files, "error-rate-template.yaml")
	} else if _, err := manifest.Create(ctx, c, namespace, []byte(template)); err != nil {
		return err
	}
	for _, f := range append(files, "example1-analysis-rollout.yaml") {
		raw, err := examples.File(f)
		if err != nil {
			return err
		}
		if _, err := manifest.Create(ctx, c, namespace, raw); err != nil {
			return err
		}
	}
	return nil
}

// SetImage changes the image of a Deployment's first container, as
// `kubectl apply` of an edited manifest would.
func SetImage(ctx context.Context, c client.Client, namespace, name, image string) error {
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); err != nil {
		return err
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	return c.Patch(ctx, d, patch)
}

// UnreachableTemplate is an error-rate AnalysisTemplate whose Prometheus
// does not answer: its runs end in Error after one failed measurement,
// which holds a release (policy Pause).
const UnreachableTemplate = `apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
  - name: error-rate
    interval: 1s
    count: 2
    consecutiveErrorLimit: 1
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: http://127.0.0.1:9
        timeout: 1s
        query: sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}",code=~"5.."}[10s]))
`

// WaitRollout polls the Rollout at key until cond holds, for at most
// timeout (a Rollout not created yet is waited for). The error tells the
// last status seen.
func WaitRollout(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration, cond func(*v1beta1.Rollout) bool) (*v1beta1.Rollout, error) {
	r := &v1beta1.Rollout{}
	err := Poll(ctx, timeout, func() (bool, error) {
		if err := c.Get(ctx, key, r); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return cond(r), nil
	})
	if err != nil {
		reason := ""
		for _, c := range r.Status.Conditions {
			if c.Type == v1beta1.RolloutConditionProgressing {
				reason = c.Reason
			}
		}
		return r, fmt.Errorf("%w; last status: phase %s, step %d %s, reason %q, message %q",
			err, r.Status.Phase, r.Status.CurrentStepIndex, r.Status.CurrentStepState, reason, r.Status.Message)
	}
	return r, nil
}
