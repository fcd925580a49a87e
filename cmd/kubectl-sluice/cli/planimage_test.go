package cli

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func podOf(containers, inits []string) *unstructured.Unstructured {
	list := func(names []string) []any {
		var out []any
		for _, n := range names {
			out = append(out, map[string]any{"name": n, "image": n + ":1"})
		}
		return out
	}
	pod := map[string]any{"containers": list(containers)}
	if len(inits) > 0 {
		pod["initContainers"] = list(inits)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"spec": map[string]any{"template": map[string]any{"spec": pod}},
	}}
}

// images lists the pod's images, containers then init containers.
func images(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	var out []string
	for _, list := range []string{"containers", "initContainers"} {
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", list)
		for _, c := range cs {
			m := c.(map[string]any)
			out = append(out, m["name"].(string)+"="+m["image"].(string))
		}
	}
	return strings.Join(out, " ")
}

// --image changes the named container's image, an init container's too,
// every container's with *, and the only container's with IMAGE alone.
func TestSetImages(t *testing.T) {
	for _, c := range []struct {
		containers, inits, flags []string
		want                     string
	}{
		{[]string{"app", "proxy"}, nil, []string{"app=app:2"}, "app=app:2 proxy=proxy:1"},
		{[]string{"app"}, []string{"migrate"}, []string{"migrate=migrate:2", "app=registry.local:5000/app:2"}, "app=registry.local:5000/app:2 migrate=migrate:2"},
		{[]string{"app", "proxy"}, []string{"migrate"}, []string{"*=x:3"}, "app=x:3 proxy=x:3 migrate=x:3"},
		{[]string{"app"}, []string{"migrate"}, []string{"app:2"}, "app=app:2 migrate=migrate:1"},
	} {
		u := podOf(c.containers, c.inits)
		if err := setImages(u, c.flags); err != nil {
			t.Errorf("%v: %v", c.flags, err)
			continue
		}
		if got := images(t, u); got != c.want {
			t.Errorf("%v: got %s, want %s", c.flags, got, c.want)
		}
	}
}

// A container that is not there, or IMAGE alone for a pod of several, is
// refused with the field path and the containers there are.
func TestSetImagesRefused(t *testing.T) {
	for flag, want := range map[string]string{
		"web=x:2": `spec.template.spec.containers: no container "web" (the pod has app, proxy, migrate)`,
		"x:2":     "spec.template.spec.containers: --image x:2 names no container, and the pod has 2 (app, proxy, migrate): give CONTAINER=IMAGE",
	} {
		u := podOf([]string{"app", "proxy"}, []string{"migrate"})
		err := setImages(u, []string{flag})
		if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", flag, err, want)
		}
		if got := images(t, u); got != "app=app:1 proxy=proxy:1 migrate=migrate:1" {
			t.Errorf("%s: refused, yet the pod changed: %s", flag, got)
		}
	}
	noTemplate := &unstructured.Unstructured{Object: map[string]any{"kind": "Service"}}
	if err := setImages(noTemplate, []string{"x:1"}); err == nil || !strings.Contains(err.Error(), "spec.template.spec: Service has no pod template") {
		t.Errorf("no template: %v", err)
	}
}

func TestCheckImages(t *testing.T) {
	for _, ok := range []string{"app=x:1", "*=x:1", "x:1", "registry:5000/x@sha256:abc"} {
		if err := checkImages([]string{ok}); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "app=", "=x:1", " "} {
		if err := checkImages([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
