package preview

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Action is what a phase did to an object.
type Action string

// The actions.
const (
	Created Action = "created"
	Changed Action = "changed"
	Deleted Action = "deleted"
)

// Change is one object a phase created, changed or deleted.
type Change struct {
	Kind, Name string
	Action     Action
	// CopyOf names the object a created one was copied from (the canary
	// Service from the stable Service, the canary Ingress from the
	// Ingress): Fields are then what it sets differently from it.
	CopyOf string
	// Fields are the fields that differ, by path, in the order of their
	// paths; none for a deleted object.
	Fields []Field
}

// Field is one field that changed. A nil Before or After is a field that
// is absent.
type Field struct {
	Path          string
	Before, After *string
}

// LongValue is the length past which a value is shown by its size: the
// snapshots of the original objects that providers keep in annotations.
const LongValue = 80

// snapshot is every written object as the copy holds it now.
func snapshot(ctx context.Context, mem *overlay) (map[objectKey]*unstructured.Unstructured, error) {
	out := map[objectKey]*unstructured.Unstructured{}
	for _, k := range mem.written {
		u, err := mem.current(ctx, k)
		if err != nil {
			return nil, err
		}
		out[k] = u
	}
	return out, nil
}

// diff lists what changed between two snapshots, in the order the objects
// were first written.
func diff(mem *overlay, before, after map[objectKey]*unstructured.Unstructured) []Change {
	var out []Change
	for _, k := range mem.written {
		was, had := before[k]
		if !had {
			was = mem.loaded[k] // written for the first time in this phase
		}
		now := after[k]
		c := Change{Kind: k.gvk.Kind, Name: k.name}
		switch {
		case was == nil && now == nil:
			continue
		case was == nil:
			c.Action = Created
			from := &unstructured.Unstructured{Object: map[string]any{}}
			if base, ok := strings.CutSuffix(k.name, "-canary"); ok {
				src := k
				src.name = base
				if u := mem.loaded[src]; u != nil {
					from, c.CopyOf = u, base
				}
			}
			c.Fields = fieldDiff(from, now)
			if c.CopyOf != "" {
				// What a copy leaves out is what the API server allocates
				// anew for each object (a Service's cluster IPs).
				c.Fields = slices.DeleteFunc(c.Fields, func(f Field) bool { return f.After == nil })
			}
		case now == nil:
			c.Action = Deleted
		default:
			c.Action = Changed
			c.Fields = fieldDiff(was, now)
			if len(c.Fields) == 0 {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// ignored are the fields the API server or the store keeps, which say
// nothing about routing.
var ignored = map[string]bool{
	"metadata.resourceVersion": true, "metadata.uid": true, "metadata.creationTimestamp": true,
	"metadata.generation": true, "metadata.managedFields": true, "metadata.ownerReferences": true,
	"metadata.name": true, "metadata.selfLink": true, "status": true,
}

// fieldDiff compares two objects field by field (leaves of their JSON).
func fieldDiff(a, b *unstructured.Unstructured) []Field {
	fa, fb := map[string]string{}, map[string]string{}
	flatten("", a.Object, fa)
	flatten("", b.Object, fb)
	paths := map[string]bool{}
	for p := range fa {
		paths[p] = true
	}
	for p := range fb {
		paths[p] = true
	}
	var out []Field
	for p := range paths {
		va, ina := fa[p]
		vb, inb := fb[p]
		if ina == inb && va == vb {
			continue
		}
		f := Field{Path: p}
		if ina {
			f.Before = &va
		}
		if inb {
			f.After = &vb
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// flatten writes each leaf of v under its path: a.b for fields,
// a["x.y/z"] for keys that are no plain names (annotations, labels), a[0]
// for list items. Long strings are written by their size.
func flatten(path string, v any, out map[string]string) {
	if ignored[path] {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flatten(join(path, k), e, out)
		}
	case []any:
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", path, i), e, out)
		}
	case string:
		if len(x) > LongValue {
			out[path] = fmt.Sprintf("(%d bytes)", len(x))
			return
		}
		out[path] = jsonText(x)
	default:
		out[path] = jsonText(x)
	}
}

func join(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
		}
	}
	switch {
	case !plain:
		return path + "[" + jsonText(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

// jsonText is v as JSON, without escaping <, > and & for HTML.
func jsonText(v any) string {
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(v) // the values of an unstructured object always encode
	return strings.TrimSuffix(b.String(), "\n")
}
