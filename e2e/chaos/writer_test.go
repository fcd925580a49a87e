//go:build e2e

package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// touchedKey is the label (and, on the Ingress, annotation) the other
// client writes: a counter, so that a lost write shows.
const touchedKey = "chaos.e2e/touched"

// writer is another client writing the lane's objects while releases run,
// as another controller or a person would: a label on the workload and on
// the Service, an annotation on the Ingress, an unchanged replicas count,
// and a no-op patch of the Rollout's status. Each label or annotation
// write first checks that its previous value is still there: a release
// that overwrote it with an older copy would have lost it.
type writer struct {
	l    *lane
	rng  *rand.Rand
	last map[string]int // object → the counter last written
	n    int
}

// run writes every 1–3s until ctx ends.
func (w *writer) run(ctx context.Context) {
	w.last = map[string]int{}
	actions := []func(context.Context) error{w.workloadLabel, w.workloadReplicas, w.serviceLabel, w.rolloutStatus}
	if w.l.spec.traffic {
		actions = append(actions, w.ingressAnnotation)
	}
	for sleep(ctx, between(w.rng, [2]time.Duration{time.Second, 3 * time.Second})) {
		act := actions[w.rng.IntN(len(actions))]
		if err := act(ctx); err != nil && ctx.Err() == nil {
			w.l.st.writeFailed("other client", err)
		}
	}
}

// check compares the object's touched value with the last one written.
func (w *writer) check(what string, got string, owner string) {
	want, ok := w.last[what]
	if !ok {
		return
	}
	if got != fmt.Sprint(want) {
		w.l.st.violation("lost write", fmt.Sprintf("%s: %s %s was %d when the other client last wrote it, now %q (field owned by %s)",
			w.l.ns, what, touchedKey, want, got, owner))
	}
}

func ownerOf(obj metav1.Object, field string) string {
	for _, e := range obj.GetManagedFields() {
		if e.FieldsV1 != nil && containsField(e.FieldsV1.Raw, field) {
			return e.Manager
		}
	}
	return "nobody"
}

func containsField(raw []byte, field string) bool {
	return len(raw) > 0 && len(field) > 0 && strings.Contains(string(raw), `"f:`+field+`"`)
}

func (w *writer) workloadLabel(ctx context.Context) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(w.l.spec.kind)
	if err := w.l.c.Get(ctx, w.l.workloadKey(), u); err != nil {
		return err
	}
	what := w.l.spec.kind.Kind + " echoserver"
	w.check(what, u.GetLabels()[touchedKey], ownerOf(u, touchedKey))
	return w.touch(ctx, u, what, "labels")
}

func (w *writer) serviceLabel(ctx context.Context) error {
	s := &corev1.Service{}
	if err := w.l.c.Get(ctx, w.l.workloadKey(), s); err != nil {
		return err
	}
	w.check("Service echoserver", s.Labels[touchedKey], ownerOf(s, touchedKey))
	return w.touch(ctx, s, "Service echoserver", "labels")
}

func (w *writer) ingressAnnotation(ctx context.Context) error {
	ing := &networkingv1.Ingress{}
	if err := w.l.c.Get(ctx, w.l.workloadKey(), ing); err != nil {
		return err
	}
	w.check("Ingress echoserver", ing.Annotations[touchedKey], ownerOf(ing, touchedKey))
	return w.touch(ctx, ing, "Ingress echoserver", "annotations")
}

// touch writes the next counter value, on the version just read.
func (w *writer) touch(ctx context.Context, obj client.Object, what, field string) error {
	w.n++
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,%q:{%q:"%d"}}}`, obj.GetResourceVersion(), field, touchedKey, w.n)
	if err := w.l.c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner(writerManager)); err != nil {
		return err
	}
	w.last[what] = w.n
	w.l.st.wrote()
	return nil
}

// workloadReplicas writes the replicas the workload has (a no-op the API
// server still admits through the webhooks).
func (w *writer) workloadReplicas(ctx context.Context) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(w.l.spec.kind)
	if err := w.l.c.Get(ctx, w.l.workloadKey(), u); err != nil {
		return err
	}
	replicas, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	patch := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"replicas":%d}}`, u.GetResourceVersion(), replicas)
	if err := w.l.c.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(patch)), client.FieldOwner(writerManager)); err != nil {
		return err
	}
	w.l.st.wrote()
	return nil
}

// rolloutStatus patches the Rollout's status with what it holds (through
// v1alpha1 and the conversion webhook for a canary; on the version read).
func (w *writer) rolloutStatus(ctx context.Context) error {
	ro := &v1beta1.Rollout{}
	if err := w.l.c.Get(ctx, client.ObjectKey{Namespace: w.l.ns, Name: rolloutName}, ro); err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	u.SetKind("Rollout")
	u.SetNamespace(w.l.ns)
	u.SetName(rolloutName)
	var body string
	switch {
	case ro.Status.CanaryStatus != nil:
		u.SetAPIVersion("rollouts.kruise.io/v1alpha1")
		body = fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"status":{"canaryStatus":{"currentStepState":%q}}}`, ro.ResourceVersion, ro.Status.CanaryStatus.CurrentStepState)
	default:
		u.SetAPIVersion("rollouts.kruise.io/v1beta1")
		body = fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"status":{"phase":%q}}`, ro.ResourceVersion, ro.Status.Phase)
	}
	if err := w.l.c.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(body)), client.FieldOwner(writerManager)); err != nil {
		return err
	}
	// The patch changed nothing, but it went through v1alpha1: the
	// conversion there and back must keep the spec and the status (the
	// write it makes adds rollouts.kruise.io/rolling-style to the
	// metadata, as Kruise Rollout's own conversion does).
	if u.GetResourceVersion() != ro.ResourceVersion {
		after := &v1beta1.Rollout{}
		if err := w.l.c.Get(ctx, client.ObjectKey{Namespace: w.l.ns, Name: rolloutName}, after); err == nil && after.ResourceVersion == u.GetResourceVersion() {
			if d := cmp.Diff(ro.Spec, after.Spec) + cmp.Diff(ro.Status, after.Status); d != "" {
				w.l.st.violation("no-op status patch", fmt.Sprintf("%s: a %s status patch that changed nothing changed the Rollout's spec or status; -before +after: %s",
					w.l.ns, u.GetAPIVersion(), changedLines(d)))
			}
		}
	}
	w.l.st.wrote()
	return nil
}

// changedLines keeps the lines of a cmp.Diff that differ, joined.
func changedLines(diff string) string {
	var out []string
	for _, line := range strings.Split(diff, "\n") {
		if strings.HasPrefix(line, "-") || strings.HasPrefix(line, "+") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, " | ")
}
