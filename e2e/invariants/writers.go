package invariants

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Concurrent writers. A test may run a client that writes labels and
// annotations of the objects a release also writes (the workload, its
// Services and Ingresses) while the release runs, as another controller or
// a person would, and check itself that its writes are never lost. The
// keys such a writer owns (its field manager in the objects'
// managedFields) are its own, not the release's: Restoration does not
// compare them. A release that overwrites one takes its ownership (an
// update takes the fields it changes), so the key is compared again.

// ConcurrentWriter declares the field manager of a client that writes
// labels and annotations of the namespace's workloads, Services and
// Ingresses during releases (see Restoration in the package
// documentation).
func ConcurrentWriter(manager string) Option {
	return func(o *options) { o.writers = append(o.writers, manager) }
}

// SetConcurrentWriters declares the field managers of ConcurrentWriter.
func (m *Model) SetConcurrentWriters(managers []string) { m.writers = managers }

// markWritten records on a workload, Service or Ingress view the label
// and annotation keys a concurrent writer owns.
func (m *Model) markWritten(v any, u *unstructured.Unstructured) {
	if len(m.writers) == 0 {
		return
	}
	var mt *meta
	switch x := v.(type) {
	case *workloadView:
		mt = &x.meta
	case *serviceView:
		mt = &x.meta
	case *ingressView:
		mt = &x.meta
	default:
		return
	}
	mt.Written = writtenKeys(u, m.writers)
}

// writtenKeys are the label ("l:" + key) and annotation ("a:" + key) keys
// of u that one of managers owns.
func writtenKeys(u *unstructured.Unstructured, managers []string) map[string]bool {
	var out map[string]bool
	for _, e := range u.GetManagedFields() {
		if e.FieldsV1 == nil || !contains(managers, e.Manager) {
			continue
		}
		var fields struct {
			Metadata struct {
				Labels      map[string]json.RawMessage `json:"f:labels"`
				Annotations map[string]json.RawMessage `json:"f:annotations"`
			} `json:"f:metadata"`
		}
		if json.Unmarshal(e.FieldsV1.Raw, &fields) != nil {
			continue
		}
		for prefix, keys := range map[string]map[string]json.RawMessage{"l:": fields.Metadata.Labels, "a:": fields.Metadata.Annotations} {
			for k := range keys {
				if len(k) > 2 && k[:2] == "f:" {
					if out == nil {
						out = map[string]bool{}
					}
					out[prefix+k[2:]] = true
				}
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// withoutWritten drops from kv (labels with prefix "l:", annotations with
// "a:") the keys a concurrent writer owns in any of views.
func withoutWritten(kv map[string]string, prefix string, views ...*meta) map[string]string {
	var out map[string]string
	for k, v := range kv {
		written := false
		for _, m := range views {
			if m != nil && m.Written[prefix+k] {
				written = true
			}
		}
		if !written {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
