package v1alpha1

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// fuzzFiller fills objects from fuzz bytes. It makes only what JSON can
// carry (a well-formed IntOrString, no managedFields, which randfill
// cannot make valid), and objects go through JSON before they are
// converted, as they do between the API server and the webhook.
func fuzzFiller(data []byte) *randfill.Filler {
	return randfill.NewFromGoFuzz(data).NilChance(0.3).NumElements(0, 3).MaxDepth(12).Funcs(
		func(p *intstr.IntOrString, c randfill.Continue) {
			if c.Bool() {
				*p = intstr.FromInt32(c.Int31())
			} else {
				var s string
				c.Fill(&s)
				*p = intstr.FromString(s)
			}
		},
		func(m *metav1.ObjectMeta, c randfill.Continue) {
			c.FillNoCustom(m)
			m.ManagedFields = nil
		},
	)
}

// throughJSON replaces *obj by what JSON makes of it; false when it
// cannot be written.
func throughJSON[T any](obj *T) bool {
	b, err := json.Marshal(obj)
	if err != nil {
		return false
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		return false
	}
	*obj = out
	return true
}

func sameJSON(t *testing.T, what string, want, got any) {
	t.Helper()
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if !bytes.Equal(w, g) {
		var wm, gm any
		_ = json.Unmarshal(w, &wm)
		_ = json.Unmarshal(g, &gm)
		t.Fatalf("%s changed the object (-before +after):\n%s", what, cmp.Diff(wm, gm))
	}
}

// fill makes obj from fuzz bytes: a YAML manifest when they are one (the
// seeds are the repository's examples), else randfill's choice.
func fill(data []byte, obj any) {
	if bytes.Contains(data, []byte("kind: Rollout")) && yaml.Unmarshal(data, obj) == nil {
		return
	}
	fuzzFiller(data).Fill(obj)
}

// FuzzRoundTripV1beta1 converts a v1beta1 Rollout built from the fuzz
// bytes to v1alpha1 and back, each through JSON, and checks that nothing
// is lost: what v1alpha1 cannot express travels in LossAnnotation. The
// object has no AlphaAnnotation: on v1beta1 that is the conversion's own,
// read as its instructions (a LossAnnotation it had is kept as it was).
func FuzzRoundTripV1beta1(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &v1beta1.Rollout{}
		fill(data, in)
		in.TypeMeta = metav1.TypeMeta{}
		delete(in.Annotations, AlphaAnnotation)
		if !throughJSON(in) {
			return
		}
		mid := &Rollout{}
		if err := mid.ConvertFrom(in); err != nil {
			t.Fatalf("ConvertFrom: %v", err)
		}
		if !throughJSON(mid) {
			t.Fatalf("the v1alpha1 object cannot be written as JSON")
		}
		out := &v1beta1.Rollout{}
		if err := mid.ConvertTo(out); err != nil {
			t.Fatalf("ConvertTo: %v", err)
		}
		sameJSON(t, "v1beta1 -> v1alpha1 -> v1beta1", in, out)
	})
}

// FuzzRoundTripV1alpha1 converts a v1alpha1 Rollout built from the fuzz
// bytes to v1beta1 and back, each through JSON, and checks that nothing
// is lost: what v1beta1 cannot express (rolloutID, a missing workloadRef,
// steps without replicas) travels in AlphaAnnotation. The object has no
// LossAnnotation, which on v1alpha1 is the conversion's own: one it wrote
// comes back by FuzzRoundTripV1beta1 (ConvertFrom(ConvertTo(ConvertFrom(b)))
// is ConvertFrom(b)); testdata holds forged ones, which are not kept.
func FuzzRoundTripV1alpha1(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &Rollout{}
		fill(data, in)
		in.TypeMeta = metav1.TypeMeta{}
		delete(in.Annotations, LossAnnotation)
		if !throughJSON(in) {
			return
		}
		hub := &v1beta1.Rollout{}
		if err := in.ConvertTo(hub); err != nil {
			return // an annotation that is not Sluice's JSON: refused, not lost
		}
		if !throughJSON(hub) {
			t.Fatalf("the v1beta1 object cannot be written as JSON")
		}
		out := &Rollout{}
		if err := out.ConvertFrom(hub); err != nil {
			t.Fatalf("ConvertFrom: %v", err)
		}
		sameJSON(t, "v1alpha1 -> v1beta1 -> v1alpha1", in, out)
	})
}

// addSeeds adds the Rollouts of the Kruise guide (docs/examples/guide) and
// docs/examples, each also as its other version (converted), and a few
// byte strings for randfill.
func addSeeds(f *testing.F) {
	paths, err := filepath.Glob("../../../docs/examples/guide/*rollout*.yaml")
	if err != nil || len(paths) == 0 {
		f.Fatalf("no guide examples: %v", err)
	}
	paths = append(paths, "../../../docs/examples/example1-analysis-rollout.yaml")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		alpha, beta := &Rollout{}, &v1beta1.Rollout{}
		if yaml.Unmarshal(b, alpha) == nil && alpha.Spec.ObjectRef.WorkloadRef != nil && alpha.ConvertTo(beta) == nil {
			other, _ := yaml.Marshal(beta)
			f.Add(append([]byte("kind: Rollout\n"), other...))
		} else if yaml.Unmarshal(b, beta) == nil && alpha.ConvertFrom(beta) == nil {
			other, _ := yaml.Marshal(alpha)
			f.Add(append([]byte("kind: Rollout\n"), other...))
		}
	}
	for _, s := range []string{"", "\x00", "sluice", "\xff\xff\xff\xff\xff\xff\xff\xff", "0123456789abcdef0123456789abcdef"} {
		f.Add([]byte(s))
	}
}
