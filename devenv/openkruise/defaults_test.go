package openkruise

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

func objectOf(t *testing.T, y string) map[string]any {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := utiljson.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDefaultCloneSet(t *testing.T) {
	obj := objectOf(t, `
spec:
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}}
`)
	defaultCloneSet(obj)
	want := objectOf(t, `
spec:
  replicas: 1
  revisionHistoryLimit: 10
  scaleStrategy: {}
  selector: {matchLabels: {app: web}}
  template: {metadata: {labels: {app: web}}}
  updateStrategy: {type: ReCreate, partition: 0, maxUnavailable: 20%, maxSurge: 0}
`)
	if d := cmp.Diff(want, obj); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}

	// A removed (or null) partition comes back as 0; one set is kept.
	obj = objectOf(t, `spec: {replicas: 10, updateStrategy: {type: InPlaceIfPossible, partition: null, maxUnavailable: 1}}`)
	defaultCloneSet(obj)
	us := obj["spec"].(map[string]any)["updateStrategy"].(map[string]any)
	if us["partition"] != int64(0) || us["maxUnavailable"] != int64(1) || us["inPlaceUpdateStrategy"] == nil {
		t.Errorf("updateStrategy %v", us)
	}
	obj = objectOf(t, `spec: {updateStrategy: {partition: 100%}}`)
	defaultCloneSet(obj)
	if p := obj["spec"].(map[string]any)["updateStrategy"].(map[string]any)["partition"]; p != "100%" {
		t.Errorf("a partition set is kept, got %v", p)
	}
}

func TestDefaultAdvancedStatefulSet(t *testing.T) {
	obj := objectOf(t, `spec: {serviceName: web}`)
	defaultAdvancedStatefulSet(obj)
	want := objectOf(t, `
spec:
  serviceName: web
  podManagementPolicy: OrderedReady
  replicas: 1
  revisionHistoryLimit: 10
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Retain}
  volumeClaimUpdateStrategy: {}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {partition: 0, maxUnavailable: 1, podUpdatePolicy: ReCreate, minReadySeconds: 0}
`)
	if d := cmp.Diff(want, obj); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	// OnDelete gets no rollingUpdate.
	obj = objectOf(t, `spec: {updateStrategy: {type: OnDelete}}`)
	defaultAdvancedStatefulSet(obj)
	if _, ok := obj["spec"].(map[string]any)["updateStrategy"].(map[string]any)["rollingUpdate"]; ok {
		t.Error("OnDelete got a rollingUpdate")
	}
}

func TestTemplateChanged(t *testing.T) {
	a := objectOf(t, `spec: {template: {spec: {containers: [{name: web, image: "demo:1"}]}}}`)
	b := objectOf(t, `spec: {template: {spec: {containers: [{name: web, image: "demo:2"}]}}, replicas: 3}`)
	c := objectOf(t, `spec: {template: {spec: {containers: [{name: web, image: "demo:1"}]}}, replicas: 5}`)
	for _, tc := range []struct {
		obj, old map[string]any
		want     bool
	}{{a, nil, true}, {a, b, true}, {a, c, false}} {
		if got, err := templateChanged(tc.obj, tc.old); err != nil || got != tc.want {
			t.Errorf("templateChanged = %v %v, want %v", got, err, tc.want)
		}
	}
}

// The status is written with OpenKruise's JSON names and omitempty.
func TestStatusMap(t *testing.T) {
	m, err := statusMap(&cloneSetStatus{ObservedGeneration: 2, Replicas: 3, CollisionCount: ptr.To(int32(0)), UpdateRevision: "web-abc"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"observedGeneration": int64(2), "replicas": int64(3), "readyReplicas": int64(0),
		"availableReplicas": int64(0), "updatedReplicas": int64(0), "updatedReadyReplicas": int64(0),
		"collisionCount": int64(0), "updateRevision": "web-abc"}
	if d := cmp.Diff(want, m); d != "" {
		t.Errorf("status (-want +got):\n%s", d)
	}
}

// SetDefaultsDaemonSet (v1alpha1): no partition and no template defaults.
func TestDefaultAdvancedDaemonSet(t *testing.T) {
	obj := objectOf(t, `
spec:
  selector: {matchLabels: {app: agent}}
  template: {metadata: {labels: {app: agent}}}
`)
	defaultAdvancedDaemonSet(obj)
	want := objectOf(t, `
spec:
  burstReplicas: 250
  revisionHistoryLimit: 10
  selector: {matchLabels: {app: agent}}
  template: {metadata: {labels: {app: agent}}}
  updateStrategy: {type: RollingUpdate, rollingUpdate: {rollingUpdateType: Standard, maxUnavailable: 1, maxSurge: 0}}
`)
	if d := cmp.Diff(want, obj); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	surging := objectOf(t, `
spec:
  updateStrategy: {rollingUpdate: {rollingUpdateType: Surging, partition: 3}}
`)
	defaultAdvancedDaemonSet(surging)
	want = objectOf(t, `
spec:
  burstReplicas: 250
  revisionHistoryLimit: 10
  updateStrategy: {type: RollingUpdate, rollingUpdate: {rollingUpdateType: Standard, maxUnavailable: 0, maxSurge: 1, partition: 3}}
`)
	if d := cmp.Diff(want, surging); d != "" {
		t.Errorf("Surging (-want +got):\n%s", d)
	}
}
