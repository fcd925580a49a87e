//go:build e2e

package trafficrouting_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
)

// fullLinkRollouts are the front end's Rollout, written in v1alpha1 with
// Kruise's annotation, and the back end's in v1beta1 with
// trafficRoutingRef: one batch of one pod held for approval, then all.
const fullLinkRollouts = `
apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: frontend
  annotations:
    rollouts.kruise.io/rolling-style: partition
    rollouts.kruise.io/trafficrouting: full-link
spec:
  objectRef:
    workloadRef: {apiVersion: apps/v1, kind: Deployment, name: frontend}
  strategy:
    canary:
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: 100%}
---
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: backend
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: backend}
  strategy:
    canary:
      trafficRoutingRef: full-link
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: 100%}
`

// A front end and a back end released together through one TrafficRouting
// on the front end's HTTPRoute: requests with x-canary: yes get the lane
// header the services behind route by. The routing changes when the first
// Rollout starts, stays while either releases, and comes back exactly as
// written when the last one completes.
func TestFullLinkCanary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 6*time.Minute)
	f.createApp("frontend", 3)
	f.createApp("backend", 3)
	f.create(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: frontend
  annotations: {team: web}
spec:
  parentRefs: [{name: public}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: frontend, port: 80}]
---
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata:
  name: full-link
spec:
  objectRef:
  - service: frontend
    gracePeriodSeconds: 1
    gateway: {httpRouteName: frontend}
  strategy:
    matches:
    - headers: [{type: Exact, name: x-canary, value: "yes"}]
    requestHeaderModifier:
      set: [{name: x-lane, value: canary}]
`)
	f.create(fullLinkRollouts)
	f.waitHealthy("frontend")
	f.waitHealthy("backend")
	f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseHealthy)
	orig, err := f.unstructured("gateway.networking.k8s.io/v1", "HTTPRoute", "frontend")
	if err != nil {
		t.Fatal(err)
	}

	f.setImage("frontend", imageV2)
	f.setImage("backend", imageV2)
	f.waitPaused("frontend", 1)
	f.waitPaused("backend", 1)
	f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseProgressing, "backend", "frontend")
	f.waitObject("gateway.networking.k8s.io/v1", "HTTPRoute", "frontend", "got the canary rule", func(u *unstructured.Unstructured, err error) bool {
		return err == nil && canaryRule(u) != nil
	})
	hr, _ := f.unstructured("gateway.networking.k8s.io/v1", "HTTPRoute", "frontend")
	rule := canaryRule(hr)
	// The stable Service itself, with the lane header: no canary Service.
	if got := fmt.Sprint(nested(rule, "backendRefs", 0, "name"), " ", nested(rule, "filters", 0, "requestHeaderModifier", "set", 0, "name"), "=", nested(rule, "filters", 0, "requestHeaderModifier", "set", 0, "value")); got != "frontend x-lane=canary" {
		t.Errorf("canary rule %v", rule)
	}
	if d := cmp.Diff(nested(orig.Object, "spec", "rules", 0), nested(hr.Object, "spec", "rules", 0)); d != "" {
		t.Errorf("the original rule changed (-orig +now):\n%s", d)
	}
	for _, svc := range []string{"frontend-canary", "backend-canary"} {
		if err := f.get(svc, &corev1.Service{}); !apierrors.IsNotFound(err) {
			t.Errorf("Service %s: %v, want none (the TrafficRouting routes to the stable Service)", svc, err)
		}
	}
	for _, svc := range []string{"frontend", "backend"} {
		s := &corev1.Service{}
		if err := f.get(svc, s); err != nil || len(s.Spec.Selector) != 1 {
			t.Errorf("Service %s selector %v (%v): the stable Service is never pinned", svc, s.Spec.Selector, err)
		}
	}

	// The front end completes; the back end still releases: the routing stays.
	f.approve("frontend")
	f.waitCompleted("frontend")
	f.waitDeploymentComplete("frontend")
	f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseProgressing, "backend")
	if hr, err := f.unstructured("gateway.networking.k8s.io/v1", "HTTPRoute", "frontend"); err != nil || canaryRule(hr) == nil {
		t.Fatalf("the canary rule went with one Rollout still releasing: %v %v", err, hr)
	}

	// The back end completes: the HTTPRoute is as written.
	f.approve("backend")
	f.waitCompleted("backend")
	f.waitDeploymentComplete("backend")
	f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseHealthy)
	now, err := f.unstructured("gateway.networking.k8s.io/v1", "HTTPRoute", "frontend")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(orig.Object["spec"], now.Object["spec"]); d != "" {
		t.Errorf("HTTPRoute spec not restored (-orig +now):\n%s", d)
	}
	if d := cmp.Diff(orig.GetAnnotations(), now.GetAnnotations()); d != "" {
		t.Errorf("HTTPRoute annotations not restored (-orig +now):\n%s", d)
	}
}

// Both Rollouts deleted mid-release through an nginx Ingress: the first
// one's going leaves the canary Ingress to the other; the last one's
// restores the Ingress, and each workload is given back.
func TestDeleteRolloutsMidRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 6*time.Minute)
	f.createApp("frontend", 2)
	f.createApp("backend", 2)
	f.create(`
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: frontend
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: frontend, port: {number: 80}}}}
---
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata:
  name: full-link
spec:
  objectRef:
  - service: frontend
    gracePeriodSeconds: 1
    ingress: {name: frontend}
  strategy:
    matches:
    - headers: [{type: Exact, name: x-canary, value: "yes"}]
`)
	f.create(fullLinkRollouts)
	f.waitHealthy("frontend")
	f.waitHealthy("backend")
	f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseHealthy)
	orig, err := f.unstructured("networking.k8s.io/v1", "Ingress", "frontend")
	if err != nil {
		t.Fatal(err)
	}

	f.setImage("frontend", imageV2)
	f.setImage("backend", imageV2)
	f.waitPaused("frontend", 1)
	f.waitPaused("backend", 1)
	f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseProgressing, "backend", "frontend")
	f.waitObject("networking.k8s.io/v1", "Ingress", "frontend-canary", "created", func(u *unstructured.Unstructured, err error) bool { return err == nil })
	canary, _ := f.unstructured("networking.k8s.io/v1", "Ingress", "frontend-canary")
	a := canary.GetAnnotations()
	backend := nested(canary.Object, "spec", "rules", 0, "http", "paths", 0, "backend", "service", "name")
	if a["nginx.ingress.kubernetes.io/canary"] != "true" || a["nginx.ingress.kubernetes.io/canary-by-header"] != "x-canary" ||
		a["nginx.ingress.kubernetes.io/canary-by-header-value"] != "yes" || backend != "frontend" {
		t.Errorf("canary Ingress: annotations %v, backend %v", a, backend)
	}
	if owners := canary.GetOwnerReferences(); len(owners) != 1 || owners[0].Kind != "TrafficRouting" || owners[0].Name != "full-link" {
		t.Errorf("canary Ingress owners %+v, want the TrafficRouting", owners)
	}

	f.deleteRollout("frontend")
	f.waitDeploymentComplete("frontend")
	f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseProgressing, "backend")
	if _, err := f.unstructured("networking.k8s.io/v1", "Ingress", "frontend-canary"); err != nil {
		t.Fatalf("the canary Ingress went with a Rollout still releasing: %v", err)
	}

	f.deleteRollout("backend")
	f.waitDeploymentComplete("backend")
	f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseHealthy)
	f.waitObject("networking.k8s.io/v1", "Ingress", "frontend-canary", "gone", func(u *unstructured.Unstructured, err error) bool {
		return apierrors.IsNotFound(err) || (err == nil && u.GetDeletionTimestamp() != nil)
	})
	now, err := f.unstructured("networking.k8s.io/v1", "Ingress", "frontend")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(orig.Object["spec"], now.Object["spec"]); d != "" {
		t.Errorf("Ingress spec not restored (-orig +now):\n%s", d)
	}
	if d := cmp.Diff(orig.GetAnnotations(), now.GetAnnotations()); d != "" {
		t.Errorf("Ingress annotations not restored (-orig +now):\n%s", d)
	}
}

// Admission rejects, with field paths, a TrafficRouting that changes
// nothing, names several routings, or asks what its Ingress class cannot
// express.
func TestTrafficRoutingAdmission(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2*time.Minute)
	for _, tc := range []struct {
		doc  string
		want []string
	}{
		{`
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata: {name: empty}
spec:
  objectRef: []
  strategy: {}
`, []string{"spec.objectRef: Required value", "spec.strategy: Required value"}},
		{`
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata: {name: two-headers}
spec:
  objectRef:
  - {service: frontend, ingress: {name: frontend}}
  - {service: backend, ingress: {name: backend}}
  strategy:
    weight: 120
    matches:
    - headers: [{name: x-a, value: "1"}, {name: x-b, value: "2"}]
`, []string{"spec.objectRef: Too many", "spec.strategy.weight: Invalid value: 120"}},
		{`
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata: {name: nginx-two-headers}
spec:
  objectRef:
  - {service: frontend, ingress: {name: frontend}}
  strategy:
    matches:
    - headers: [{name: x-a, value: "1"}, {name: x-b, value: "2"}]
`, []string{"spec.strategy.matches: Invalid value"}},
	} {
		err := f.c.Create(f.ctx, mustObject(t, tc.doc, f.ns))
		if err == nil {
			t.Errorf("accepted:\n%s", tc.doc)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not name %q", err, w)
			}
		}
	}
}

// A Rollout deleted without giving back (its finalizer removed by hand)
// leaves its finalizer on the TrafficRouting: Kruise keeps the routing
// changed for ever; Sluice drops the finalizer of a Rollout that no longer
// exists, so the routing is never applied for nobody.
func TestGoneRolloutLetsGo(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 3*time.Minute)
	f.createApp("frontend", 1)
	f.create(`
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: frontend
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: frontend, port: {number: 80}}}}
---
apiVersion: rollouts.kruise.io/v1alpha1
kind: TrafficRouting
metadata:
  name: full-link
spec:
  objectRef:
  - {service: frontend, gracePeriodSeconds: 1, ingress: {name: frontend}}
  strategy:
    weight: 10
`)
	tr := f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseHealthy)
	patch := client.MergeFrom(tr.DeepCopy())
	tr.Finalizers = append(tr.Finalizers, v1alpha1.ProgressingRolloutFinalizer("gone"))
	if err := f.c.Patch(f.ctx, tr, patch); err != nil {
		t.Fatal(err)
	}
	f.waitTrafficRouting("full-link", v1alpha1.TrafficRoutingPhaseHealthy)
	if err := f.get("full-link", tr); err != nil || len(tr.HoldingRollouts()) != 0 {
		t.Fatalf("finalizers %v (%v)", tr.Finalizers, err)
	}
	if _, err := f.unstructured("networking.k8s.io/v1", "Ingress", "frontend-canary"); !apierrors.IsNotFound(err) {
		t.Errorf("canary Ingress: %v, want none: no Rollout holds the TrafficRouting", err)
	}
}
