package framework

import (
	"context"
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CreateExample1 creates the guide's Example 1 with Sluice's analysis in a
// namespace: the echoserver Deployment (5 pods) and Service, its Nginx
// Ingress, the error-rate AnalysisTemplate and the Rollout of
// docs/examples. template, when given, replaces the AnalysisTemplate.
func CreateExample1(ctx context.Context, c client.Client, namespace, template string) error {
	root := RepoRoot()
	files := []string{
		filepath.Join(root, "e2e", "testdata", "guide", "echoserver.yaml"),
		filepath.Join(root, "e2e", "testdata", "guide", "example1-ingress.yaml"),
	}
	if template == "" {
		files = append(files, filepath.Join(root, "docs", "examples", "error-rate-template.yaml"))
	} else if _, err := Create(ctx, c, namespace, []byte(template)); err != nil {
		return err
	}
	for _, f := range append(files, filepath.Join(root, "docs", "examples", "example1-analysis-rollout.yaml")) {
		if _, err := CreateFile(ctx, c, namespace, f); err != nil {
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
