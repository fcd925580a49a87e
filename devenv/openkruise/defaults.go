package openkruise

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// OpenKruise's defaulting webhook (pkg/webhook/cloneset/mutating and
// pkg/webhook/statefulset/mutating, which call apis/apps/defaults
// SetDefaultsCloneSet / SetDefaultsStatefulSet) on objects as JSON maps.
// Only absent (or null) fields are defaulted: a partition a client
// removes comes back as 0; one a client sets is kept.

// setDefault sets path to v when it is absent or null.
func setDefault(obj map[string]any, v any, path ...string) {
	if cur, found, _ := unstructured.NestedFieldNoCopy(obj, path...); found && cur != nil {
		return
	}
	_ = unstructured.SetNestedField(obj, v, path...)
}

func nestedString(obj map[string]any, path ...string) string {
	s, _, _ := unstructured.NestedString(obj, path...)
	return s
}

// defaultCloneSet is SetDefaultsCloneSet without the template part:
// replicas 1, revisionHistoryLimit 10, updateStrategy type ReCreate
// (inPlaceUpdateStrategy {} for the in-place types), partition 0,
// maxUnavailable 20%, maxSurge 0. scaleStrategy {} appears because the
// webhook re-encodes the typed object, where it is a struct.
func defaultCloneSet(obj map[string]any) {
	setDefault(obj, int64(1), "spec", "replicas")
	setDefault(obj, int64(10), "spec", "revisionHistoryLimit")
	setDefault(obj, map[string]any{}, "spec", "scaleStrategy")
	switch nestedString(obj, "spec", "updateStrategy", "type") {
	case "":
		_ = unstructured.SetNestedField(obj, "ReCreate", "spec", "updateStrategy", "type")
	case "InPlaceIfPossible", "InPlaceOnly":
		setDefault(obj, map[string]any{}, "spec", "updateStrategy", "inPlaceUpdateStrategy")
	}
	setDefault(obj, int64(0), "spec", "updateStrategy", "partition")
	setDefault(obj, "20%", "spec", "updateStrategy", "maxUnavailable")
	setDefault(obj, int64(0), "spec", "updateStrategy", "maxSurge")
}

// defaultAdvancedStatefulSet is SetDefaultsStatefulSet without the template
// part, with OpenKruise v1.9's default gates (StatefulSetAutoDeletePVC on,
// StatefulSetAutoResizePVCGate off): podManagementPolicy OrderedReady;
// updateStrategy RollingUpdate with partition 0, maxUnavailable 1,
// podUpdatePolicy ReCreate, minReadySeconds 0; PVC retention Retain/Retain;
// replicas 1, revisionHistoryLimit 10. volumeClaimUpdateStrategy {} comes
// from the typed re-encoding.
func defaultAdvancedStatefulSet(obj map[string]any) {
	if nestedString(obj, "spec", "podManagementPolicy") == "" {
		_ = unstructured.SetNestedField(obj, "OrderedReady", "spec", "podManagementPolicy")
	}
	if nestedString(obj, "spec", "updateStrategy", "type") == "" {
		_ = unstructured.SetNestedField(obj, "RollingUpdate", "spec", "updateStrategy", "type")
	}
	if nestedString(obj, "spec", "updateStrategy", "type") == "RollingUpdate" {
		ru := []string{"spec", "updateStrategy", "rollingUpdate"}
		setDefault(obj, map[string]any{}, ru...)
		setDefault(obj, int64(0), append(ru, "partition")...)
		setDefault(obj, int64(1), append(ru, "maxUnavailable")...)
		if nestedString(obj, append(ru, "podUpdatePolicy")...) == "" {
			_ = unstructured.SetNestedField(obj, "ReCreate", append(ru, "podUpdatePolicy")...)
		}
		setDefault(obj, int64(0), append(ru, "minReadySeconds")...)
	}
	retention := []string{"spec", "persistentVolumeClaimRetentionPolicy"}
	setDefault(obj, map[string]any{}, retention...)
	for _, f := range []string{"whenDeleted", "whenScaled"} {
		if nestedString(obj, append(retention, f)...) == "" {
			_ = unstructured.SetNestedField(obj, "Retain", append(retention, f)...)
		}
	}
	setDefault(obj, map[string]any{}, "spec", "volumeClaimUpdateStrategy")
	setDefault(obj, int64(1), "spec", "replicas")
	setDefault(obj, int64(10), "spec", "revisionHistoryLimit")
}

// defaultAdvancedDaemonSet is SetDefaultsDaemonSet (v1alpha1): burstReplicas
// 250; updateStrategy type RollingUpdate with rollingUpdateType Standard
// (Surging converted to it, with maxSurge 1 and maxUnavailable 0 when
// unset) and, when neither is set, maxUnavailable 1 and maxSurge 0;
// revisionHistoryLimit 10. The partition is not defaulted: one a client
// removes stays absent (which the controller reads as 0).
func defaultAdvancedDaemonSet(obj map[string]any) {
	setDefault(obj, int64(250), "spec", "burstReplicas")
	if nestedString(obj, "spec", "updateStrategy", "type") == "" {
		_ = unstructured.SetNestedField(obj, "RollingUpdate", "spec", "updateStrategy", "type")
	}
	if nestedString(obj, "spec", "updateStrategy", "type") == "RollingUpdate" {
		ru := []string{"spec", "updateStrategy", "rollingUpdate"}
		setDefault(obj, map[string]any{}, ru...)
		typ := append(ru, "rollingUpdateType")
		if nestedString(obj, typ...) == "Surging" {
			setDefault(obj, int64(1), append(ru, "maxSurge")...)
			setDefault(obj, int64(0), append(ru, "maxUnavailable")...)
		}
		if t := nestedString(obj, typ...); t == "" || t == "Surging" {
			_ = unstructured.SetNestedField(obj, "Standard", typ...)
		}
		_, hasUnavailable, _ := unstructured.NestedFieldNoCopy(obj, append(ru, "maxUnavailable")...)
		_, hasSurge, _ := unstructured.NestedFieldNoCopy(obj, append(ru, "maxSurge")...)
		if !hasUnavailable && !hasSurge {
			_ = unstructured.SetNestedField(obj, int64(1), append(ru, "maxUnavailable")...)
			_ = unstructured.SetNestedField(obj, int64(0), append(ru, "maxSurge")...)
		}
	}
	setDefault(obj, int64(10), "spec", "revisionHistoryLimit")
}

// typedTemplate reads spec.template as the typed object holds it.
func typedTemplate(obj map[string]any) (*corev1.PodTemplateSpec, error) {
	t := &corev1.PodTemplateSpec{}
	m, _, _ := unstructured.NestedMap(obj, "spec", "template")
	if err := fromUnstructured(&unstructured.Unstructured{Object: m}, t); err != nil {
		return nil, fmt.Errorf("spec.template: %w", err)
	}
	return t, nil
}

// templateChanged says whether the webhook injects template defaults: on
// an update, only when the template differs from the stored one (compared
// as typed templates); on a create, always.
func templateChanged(obj, old map[string]any) (bool, error) {
	if old == nil {
		return true, nil
	}
	a, err := typedTemplate(obj)
	if err != nil {
		return false, err
	}
	b, err := typedTemplate(old)
	if err != nil {
		return false, err
	}
	return !reflect.DeepEqual(a, b), nil
}

// defaultTemplate is SetDefaultPodSpec: the Kubernetes defaults of a pod
// spec, except that a container's imagePullPolicy defaults to Always (for
// in-place updates). The Kubernetes defaults are the API server's own: the
// template is created as a PodTemplate in a dry run and read back.
func defaultTemplate(ctx context.Context, c client.Client, namespace string, obj map[string]any) error {
	t, err := typedTemplate(obj)
	if err != nil {
		return err
	}
	for i := range t.Spec.Containers {
		if t.Spec.Containers[i].ImagePullPolicy == "" {
			t.Spec.Containers[i].ImagePullPolicy = corev1.PullAlways
		}
	}
	pt := &corev1.PodTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: "openkruise-defaults-"},
		Template:   *t,
	}
	if err := c.Create(ctx, pt, client.DryRunAll); err != nil {
		return fmt.Errorf("defaulting spec.template: %w", err)
	}
	raw, err := json.Marshal(pt.Template)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := utiljson.Unmarshal(raw, &m); err != nil {
		return err
	}
	return unstructured.SetNestedField(obj, m, "spec", "template")
}
