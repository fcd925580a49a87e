package cli

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// checkImages refuses an --image that names no image, before anything is
// read.
func checkImages(images []string) error {
	for _, spec := range images {
		container, image, named := strings.Cut(spec, "=")
		if image == "" && !named {
			image = container
		}
		if strings.TrimSpace(image) == "" || (named && strings.TrimSpace(container) == "") {
			return withCode(ExitUsage, "--image %q: want CONTAINER=IMAGE, *=IMAGE, or IMAGE alone for a pod of one container", spec)
		}
	}
	return nil
}

// setImages sets the images of u's pod template (spec.template.spec) as
// kubectl set image does: CONTAINER=IMAGE names a container or an init
// container, *=IMAGE sets them all, IMAGE alone needs a pod of one
// container.
func setImages(u *unstructured.Unstructured, images []string) error {
	const path = "spec.template.spec"
	pod, found, err := unstructured.NestedMap(u.Object, "spec", "template", "spec")
	if err != nil || !found {
		return fmt.Errorf("%s: %s has no pod template", path, u.GetKind())
	}
	lists := []string{"containers", "initContainers"}
	var names []string
	for _, list := range lists {
		cs, _ := pod[list].([]any)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				names = append(names, fmt.Sprint(m["name"]))
			}
		}
	}
	for _, spec := range images {
		container, image, named := strings.Cut(spec, "=")
		if !named {
			cs, _ := pod["containers"].([]any)
			if len(cs) != 1 {
				return fmt.Errorf("%s.containers: --image %s names no container, and the pod has %d (%s): give CONTAINER=IMAGE", path, spec, len(cs), strings.Join(names, ", "))
			}
			container, image = "*", spec
			if m, ok := cs[0].(map[string]any); ok {
				container = fmt.Sprint(m["name"])
			}
		}
		set := 0
		for _, list := range lists {
			cs, _ := pod[list].([]any)
			for _, c := range cs {
				m, ok := c.(map[string]any)
				if ok && (container == "*" || m["name"] == container) {
					m["image"] = image
					set++
				}
			}
		}
		if set == 0 {
			return fmt.Errorf("%s.containers: no container %q (the pod has %s)", path, container, strings.Join(names, ", "))
		}
	}
	return unstructured.SetNestedMap(u.Object, pod, "spec", "template", "spec")
}
