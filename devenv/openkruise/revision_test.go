package openkruise

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func demoTemplate(image string) *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}
}

// The data is the template as the typed object encodes it, keys sorted,
// wrapped as a replacing strategic-merge patch; OpenKruise v1.9's
// apimachinery writes the empty creationTimestamp as null.
func TestControllerRevisionData(t *testing.T) {
	for _, tc := range []struct {
		legacy bool
		want   string
	}{
		{true, `{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"image":"demo:1","name":"web","resources":{}}]}}}}`},
		{false, `{"spec":{"template":{"$patch":"replace","metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"image":"demo:1","name":"web","resources":{}}]}}}}`},
	} {
		got, err := ControllerRevisionData(demoTemplate("demo:1"), tc.legacy)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("legacy=%v:\n got %s\nwant %s", tc.legacy, got, tc.want)
		}
	}
}

func TestControllerRevisionHashAndName(t *testing.T) {
	data, err := ControllerRevisionData(demoTemplate("demo:1"), true)
	if err != nil {
		t.Fatal(err)
	}
	h0, h1 := ControllerRevisionHash(data, 0), ControllerRevisionHash(data, 1)
	if h0 != ControllerRevisionHash(data, 0) {
		t.Error("the hash is not deterministic")
	}
	if h0 == h1 {
		t.Error("the collision count must change the hash")
	}
	other, _ := ControllerRevisionData(demoTemplate("demo:2"), true)
	if ControllerRevisionHash(other, 0) == h0 {
		t.Error("another template must hash differently")
	}
	// rand.SafeEncodeString's alphabet has no vowels and no 0, 1, 3.
	if strings.ContainsAny(h0, "aeiou013-") || len(h0) < 8 || len(h0) > 10 {
		t.Errorf("hash %q is not a safe-encoded 32-bit number", h0)
	}
	name := ControllerRevisionName("echoserver", h0)
	if name != "echoserver-"+h0 || ShortHash(name) != h0 {
		t.Errorf("name %q, short hash %q", name, ShortHash(name))
	}
	if long := ControllerRevisionName(strings.Repeat("x", 300), h0); len(long) != 223+1+len(h0) {
		t.Errorf("a long parent name is cut to 223 characters: got %d", len(long))
	}
	if got := ShortHash("my-web-app-7f6c74bc5b"); got != "7f6c74bc5b" {
		t.Errorf("ShortHash of a name with dashes: %q", got)
	}
}

// Pods are created from the template recorded in the revision.
func TestTemplateOfRevision(t *testing.T) {
	data, err := ControllerRevisionData(demoTemplate("demo:1"), true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := templateOfRevision(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Containers[0].Image != "demo:1" || got.Labels["app"] != "web" {
		t.Errorf("template read back: %+v", got)
	}
}
