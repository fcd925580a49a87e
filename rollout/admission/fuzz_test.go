package admission

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/randfill"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/analysis/admission/admissiontest"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// exampleRollouts are the Rollouts of the Kruise guide and docs/examples,
// as JSON.
func exampleRollouts(f *testing.F) [][]byte {
	paths, _ := filepath.Glob("../../docs/examples/guide/*rollout*.yaml")
	paths = append(paths, "../../docs/examples/example1-analysis-rollout.yaml")
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, j)
	}
	if len(out) < 4 {
		f.Fatalf("found only %d example Rollouts", len(out))
	}
	return out
}

// FuzzValidatorHandle sends the Rollout webhook requests whose object and
// old object are fuzzed JSON, for both versions and every operation, with
// the cluster holding the docs' error-rate template. A request is allowed,
// refused as undecodable (400, with the decoder's message) or denied with
// causes that each name a field: never a panic. The seeds are the guide's
// and the docs' Rollouts.
func FuzzValidatorHandle(f *testing.F) {
	for _, r := range exampleRollouts(f) {
		for sel := range uint8(8) {
			f.Add(r, r, sel)
		}
		f.Add(r, []byte(`{"spec":{"workloadRef":{}}}`), uint8(3))
	}
	f.Add([]byte(`{"spec":`), []byte(`null`), uint8(1))
	f.Add([]byte(`{"metadata":{"annotations":{"conversion.sluice.dev/v1beta1-only":"x"}}}`), []byte(`{}`), uint8(0))

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, v1beta1.AddToScheme, analysisv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			f.Fatal(err)
		}
	}
	tmpl := &analysisv1alpha1.AnalysisTemplate{}
	b, err := os.ReadFile("../../docs/examples/error-rate-template.yaml")
	if err != nil || yaml.Unmarshal(b, tmpl) != nil {
		f.Fatalf("error-rate template: %v", err)
	}
	tmpl.Namespace = "default"
	v := &Validator{
		Client:  fake.NewClientBuilder().WithScheme(scheme).WithObjects(tmpl).Build(),
		Decoder: admission.NewDecoder(scheme),
		Options: DefaultOptions,
	}
	ops := []admissionv1.Operation{admissionv1.Create, admissionv1.Update, admissionv1.Delete, admissionv1.Connect}
	f.Fuzz(func(t *testing.T, object, old []byte, sel uint8) {
		version := "v1alpha1"
		if sel&1 == 1 {
			version = "v1beta1"
		}
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID:       "fuzz",
			Kind:      metav1.GroupVersionKind{Group: "rollouts.kruise.io", Version: version, Kind: "Rollout"},
			Namespace: "default", Name: "rollouts-demo",
			Operation: ops[(sel>>1)%4],
			Object:    runtime.RawExtension{Raw: object},
			OldObject: runtime.RawExtension{Raw: old},
		}}
		admissiontest.CheckResponse(t, v.Handle(context.Background(), req))
	})
}

// FuzzValidateSpec runs the pure rules on Rollouts that randfill makes
// from the fuzz bytes (of either version: a v1alpha1 one converted as the
// webhook does) and on updates between two of them: never a panic, every
// error names a field under spec (or, for v1alpha1, the annotation that
// holds the rolling style).
func FuzzValidateSpec(f *testing.F) {
	for _, s := range []string{"", "\x00\x01", "sluice", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "0123456789abcdef0123456789abcdef"} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, alpha bool) {
		fill := randfill.NewFromGoFuzz(data).NilChance(0.3).NumElements(0, 4).MaxDepth(10).Funcs(
			func(p *intstr.IntOrString, c randfill.Continue) {
				choices := []intstr.IntOrString{intstr.FromInt32(c.Int31n(20) - 5), intstr.FromString("50%"), intstr.FromString("0%"),
					intstr.FromString("100%"), intstr.FromString("150%"), intstr.FromString("x%"), intstr.FromString(" 20%")}
				*p = choices[c.Intn(len(choices))]
			},
		)
		var cur, old v1beta1.Rollout
		if alpha {
			var a v1alpha1.Rollout
			fill.Fill(&a)
			if a.ConvertTo(&cur) != nil {
				return
			}
		} else {
			fill.Fill(&cur)
		}
		fill.Fill(&old)
		errs := ValidateSpec(&cur, !alpha, DefaultOptions)
		errs = append(errs, ValidateUpdate(&old, &cur)...)
		if alpha {
			errs = toV1alpha1Paths(errs)
		}
		for _, e := range errs {
			if !strings.HasPrefix(e.Field, "spec.") && e.Field != "spec" && !strings.HasPrefix(e.Field, "metadata.annotations[") {
				t.Fatalf("error without a field path: %v", e)
			}
		}
		_ = Warnings(&cur)
		_ = field.ErrorList(errs).ToAggregate()
		if _, err := json.Marshal(errs); err != nil {
			t.Fatalf("errors cannot be written: %v", err)
		}
	})
}
