//go:build e2e

package release_test

import (
	"encoding/json"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/workload"
)

// disableGenerateCanaryService, as Kruise documents it: no <service>-canary
// Service is made; the canary Ingress routes to the stable Service itself.
// The partition-style Deployment carries Kruise's marks meanwhile: the
// in-progressing annotation {"rolloutName":...}, the stable-revision label
// (the pod-template-hash of the pods released before) and the
// workload-type label; the first two go at the end.
func TestDisableGenerateCanaryServiceAndDeploymentMarks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 4*time.Minute)
	f.createEchoserver(4)
	f.createFile("example1-ingress.yaml")
	f.create(`apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-demo}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      disableGenerateCanaryService: true
      steps:
      - {traffic: 20%, replicas: 1, pause: {}}
      - {replicas: 100%}
      trafficRoutings:
      - service: echoserver
        gracePeriodSeconds: 0
        ingress: {name: echoserver}
`)
	f.waitHealthy("rollouts-demo")
	stableHash := f.pods("echoserver", imageV1)[0].Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	f.setImage("echoserver", imageV2)
	f.waitStep("rollouts-demo", 1, v1beta1.CanaryStepStatePaused)

	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver-canary"}, &corev1.Service{}); !apierrors.IsNotFound(err) {
		t.Errorf("a canary Service exists (%v); disableGenerateCanaryService makes none", err)
	}
	ing := &networkingv1.Ingress{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver-canary"}, ing); err != nil {
		t.Fatalf("no canary Ingress: %v", err)
	}
	if b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service; b == nil || b.Name != "echoserver" {
		t.Errorf("canary Ingress backend %+v, want the stable Service echoserver", b)
	}
	if w := ing.Annotations["nginx.ingress.kubernetes.io/canary-weight"]; w != "20" {
		t.Errorf("canary weight %q, want 20", w)
	}

	d := f.deployment("echoserver")
	if got := d.Labels[workload.StableRevisionLabel]; got != stableHash {
		t.Errorf("%s = %q, want the stable pods' pod-template-hash %q", workload.StableRevisionLabel, got, stableHash)
	}
	if got := d.Labels[workload.WorkloadTypeLabel]; got != "deployment" {
		t.Errorf("%s = %q, want deployment", workload.WorkloadTypeLabel, got)
	}
	var mark map[string]string
	if err := json.Unmarshal([]byte(d.Annotations[workload.InProgressingAnnotation]), &mark); err != nil || len(mark) != 1 || mark["rolloutName"] != "rollouts-demo" {
		t.Errorf("%s = %q", workload.InProgressingAnnotation, d.Annotations[workload.InProgressingAnnotation])
	}

	f.approve("rollouts-demo")
	f.waitCompleted("rollouts-demo")
	d = f.waitDeploymentComplete("echoserver")
	if _, ok := d.Labels[workload.StableRevisionLabel]; ok {
		t.Errorf("%s left after the release", workload.StableRevisionLabel)
	}
	if _, ok := d.Annotations[workload.InProgressingAnnotation]; ok {
		t.Errorf("%s left after the release", workload.InProgressingAnnotation)
	}
	if err := framework.Poll(f.ctx, time.Minute, func() (bool, error) {
		err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver-canary"}, &networkingv1.Ingress{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	}); err != nil {
		t.Errorf("the canary Ingress stays: %v", err)
	}
}
