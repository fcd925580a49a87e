//go:build e2e

package install_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/deploy"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/notify"
)

// With analysisTemplates.enabled the manager, as the chart runs it,
// applies every ready-made ClusterAnalysisTemplate once its webhook
// answers (which admits them).
func TestReadyMadeTemplatesApplied(t *testing.T) {
	ctx := withTimeout(t, 2*time.Minute)
	files, err := deploy.AnalysisTemplates()
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range files {
		for _, want := range ts {
			got := &v1alpha1.ClusterAnalysisTemplate{}
			err := framework.Poll(ctx, time.Minute, func() (bool, error) {
				return env.Client.Get(ctx, client.ObjectKey{Name: want.Name}, got) == nil, nil
			})
			if err != nil {
				t.Fatalf("ClusterAnalysisTemplate %s: %v", want.Name, err)
			}
			if got.Spec.Metrics[0].Provider.Prometheus.Query != want.Spec.Metrics[0].Provider.Prometheus.Query {
				t.Errorf("%s: the query differs from deploy/analysis", want.Name)
			}
			owned := false
			for _, mf := range got.ManagedFields {
				owned = owned || mf.Manager == "sluice-controller"
			}
			if !owned {
				t.Errorf("%s is not applied by sluice-controller: %+v", want.Name, got.ManagedFields)
			}
		}
	}
	assertNothingForbidden(t)
}

// With notifications.enabled the manager, with the chart's RBAC, reads a
// team's sluice-notifications-cm and its Secret and records what it sent
// on the Rollout.
func TestNotificationAsTheChartsServiceAccount(t *testing.T) {
	ctx := withTimeout(t, 3*time.Minute)
	c := env.Client
	ns := env.Namespace(t)
	var mu sync.Mutex
	var got []notify.Message
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m notify.Message
		if json.Unmarshal(b, &m) == nil && r.Header.Get("Authorization") == "Bearer team" {
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: notify.SecretName}, StringData: map[string]string{"url": srv.URL, "token": "Bearer team"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: notify.ConfigMapName}, Data: map[string]string{
			"service.webhook.team": "url: $url\nheaders: [{name: Authorization, value: $token}]\n",
			"subscriptions":        "- recipients: [team]\n  triggers: [on-waiting-for-person]\n",
		}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := manifest.Create(ctx, c, ns, []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: echoserver, labels: {app: echoserver}}
spec:
  replicas: 2
  selector: {matchLabels: {app: echoserver}}
  template:
    metadata: {labels: {app: echoserver}}
    spec:
      containers: [{name: echoserver, image: "`+imageV1+`"}]
---
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-demo}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: 100%}
`)); err != nil {
		t.Fatal(err)
	}
	waitRollout(ctx, t, ns, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "echoserver"}, d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = imageV2
	if err := c.Patch(ctx, d, patch); err != nil {
		t.Fatal(err)
	}
	r := waitRollout(ctx, t, ns, "the message recorded", func(r *v1beta1.Rollout) bool {
		return len(notify.ParseNotified(r.Annotations[notify.NotifiedAnnotation])) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Trigger != notify.OnWaitingForPerson || got[0].Rollout.Namespace != ns {
		t.Errorf("the receiver got %+v", got)
	}
	for _, rec := range notify.ParseNotified(r.Annotations[notify.NotifiedAnnotation]) {
		if rec.Result != notify.ResultSent {
			t.Errorf("recorded %+v", rec)
		}
	}
	// Let the release finish, so the namespace ends at rest.
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/v1alpha1")
	u.SetKind("Rollout")
	u.SetNamespace(ns)
	u.SetName("rollouts-demo")
	if err := c.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`))); err != nil {
		t.Fatal(err)
	}
	waitRollout(ctx, t, ns, "the release to complete", func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.LastRelease != nil
	})
	assertNothingForbidden(t)
}
