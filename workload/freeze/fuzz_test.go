package freeze

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/analysis/admission/admissiontest"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// kinds are the workloads the webhook freezes, as a request names them.
var kinds = []metav1.GroupVersionKind{
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: workload.CloneSetKind.Group, Version: workload.CloneSetKind.Version, Kind: workload.CloneSetKind.Kind},
	{Group: workload.AdvancedStatefulSetKind.Group, Version: workload.AdvancedStatefulSetKind.Version, Kind: workload.AdvancedStatefulSetKind.Kind},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: workload.AdvancedDaemonSetKind.Group, Version: workload.AdvancedDaemonSetKind.Version, Kind: workload.AdvancedDaemonSetKind.Kind},
}

// FuzzFreezeHandle sends the freeze webhook updates of each kind it
// handles, whose object and old object are fuzzed JSON, with a Rollout
// for every kind's "echoserver" in the cluster (in progress or not): each
// is allowed, patched or refused with a message, never a panic. The seeds
// are the guide's echoserver Deployment, as each kind, with its image
// changed (a new release), unchanged, and scaled to zero.
func FuzzFreezeHandle(f *testing.F) {
	b, err := os.ReadFile("../../docs/examples/guide/echoserver.yaml")
	if err != nil {
		f.Fatal(err)
	}
	v1, err := yaml.YAMLToJSON(b)
	if err != nil {
		f.Fatal(err)
	}
	v2 := []byte(strings.Replace(string(v1), "demo:1.10.2", "demo:1.10.3", 1))
	zero := []byte(strings.Replace(string(v2), `"replicas":5`, `"replicas":0`, 1))
	for i, k := range kinds {
		as := func(obj []byte) []byte {
			return []byte(strings.Replace(strings.Replace(string(obj), `"apps/v1"`, `"`+k.Group+"/"+k.Version+`"`, 1), `"Deployment"`, `"`+k.Kind+`"`, 1))
		}
		for _, sel := range []uint8{uint8(i), uint8(i + 4)} {
			f.Add(as(v2), as(v1), sel)
			f.Add(as(v1), as(v1), sel)
			f.Add(as(zero), as(v1), sel)
		}
	}
	f.Add([]byte(`{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"echoserver","annotations":{"rollouts.kruise.io/in-progressing":"{}","rollouts.kruise.io/deployment-strategy":"not json"}},"spec":{"strategy":{"rollingUpdate":{}}}}`),
		[]byte(`{}`), uint8(0))

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		f.Fatal(err)
	}
	if err := v1beta1.AddToScheme(scheme); err != nil {
		f.Fatal(err)
	}
	var rollouts []runtime.Object
	for _, k := range kinds {
		for _, phase := range []v1beta1.RolloutPhase{v1beta1.RolloutPhaseHealthy, v1beta1.RolloutPhaseProgressing} {
			r := &v1beta1.Rollout{
				ObjectMeta: metav1.ObjectMeta{Name: strings.ToLower(k.Group+"-"+k.Kind) + "-" + strings.ToLower(string(phase)), Namespace: "default"},
				Spec:       v1beta1.RolloutSpec{WorkloadRef: v1beta1.ObjectRef{APIVersion: k.Group + "/" + k.Version, Kind: k.Kind, Name: "echoserver"}},
				Status:     v1beta1.RolloutStatus{Phase: phase},
			}
			if phase == v1beta1.RolloutPhaseProgressing {
				r.Namespace = "progressing"
			}
			rollouts = append(rollouts, r)
		}
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "echoserver-5d8f9c7b6", Namespace: "default",
		Labels: map[string]string{"app": "echoserver", appsv1.DefaultDeploymentUniqueLabelKey: "5d8f9c7b6"}}}
	h := &Handler{
		Client:  fake.NewClientBuilder().WithScheme(scheme).WithRuntimeObjects(append(rollouts, rs)...).Build(),
		Decoder: admission.NewDecoder(scheme),
	}
	f.Fuzz(func(t *testing.T, object, old []byte, sel uint8) {
		namespace := "default"
		if sel&4 != 0 {
			namespace = "progressing"
		}
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID:       "fuzz",
			Kind:      kinds[sel%4],
			Namespace: namespace, Name: "echoserver",
			Operation: admissionv1.Update,
			Object:    runtime.RawExtension{Raw: object},
			OldObject: runtime.RawExtension{Raw: old},
		}}
		resp := h.Handle(context.Background(), req)
		admissiontest.CheckResponse(t, resp)
		if _, err := json.Marshal(resp.Patches); err != nil {
			t.Fatalf("a patch that cannot be written: %v", err)
		}
	})
}
