package framework

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Objects decodes a multi-document YAML manifest.
func Objects(manifest []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, err
		}
		if len(obj.Object) == 0 {
			continue
		}
		out = append(out, obj)
	}
}

// Create creates every object of a manifest in namespace, as kubectl
// create -f would.
func Create(ctx context.Context, c client.Client, namespace string, manifest []byte) ([]*unstructured.Unstructured, error) {
	objs, err := Objects(manifest)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		o.SetNamespace(namespace)
		if err := c.Create(ctx, o); err != nil {
			return nil, fmt.Errorf("creating %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return objs, nil
}

// CreateFile is Create on a file.
func CreateFile(ctx context.Context, c client.Client, namespace, path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Create(ctx, c, namespace, b)
}
