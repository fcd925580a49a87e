package invariants

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

// confirmer checks the model's state against etcd at one revision: a list
// with resourceVersionMatch=Exact returns every object of a kind exactly
// as it was at that revision, across kinds consistently. If the model held
// the same resourceVersion for every object of every watched kind, it was
// evaluating the real state at that revision, and nothing a lagging stream
// had not yet delivered could change its verdict.
type confirmer struct {
	dyn       dynamic.Interface
	namespace string
}

// confirmation is the outcome of a confirm.
type confirmation struct {
	// ok: the model's state was the real one (or could not be checked,
	// in which case note says why).
	ok   bool
	note string
	// retry: the API server did not answer; asking again may.
	retry bool
}

func (c *confirmer) confirm(ctx context.Context, rv uint64, kinds []Kind, digest map[Kind]map[string]uint64) confirmation {
	for _, k := range kinds {
		list, err := c.dyn.Resource(k.GVR()).Namespace(c.namespace).List(ctx, metav1.ListOptions{
			ResourceVersion: strconv.FormatUint(rv, 10), ResourceVersionMatch: metav1.ResourceVersionMatchExact,
		})
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
			return confirmation{ok: true, note: fmt.Sprintf("not confirmed: revision %d is compacted", rv)}
		}
		if err != nil {
			return confirmation{ok: true, retry: true, note: fmt.Sprintf("not confirmed: listing %s at revision %d: %v", k, rv, err)}
		}
		real := map[string]uint64{}
		for i := range list.Items {
			v, err := parseRV(list.Items[i].GetResourceVersion())
			if err != nil {
				return confirmation{ok: true, note: "not confirmed: " + err.Error()}
			}
			real[list.Items[i].GetName()] = v
		}
		if d := diffDigest(digest[k], real); d != "" {
			return confirmation{note: fmt.Sprintf("the watch of %s was behind etcd at revision %d: %s", k, rv, d)}
		}
	}
	return confirmation{ok: true}
}

func diffDigest(model, real map[string]uint64) string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(real)) {
		if got, ok := model[name]; !ok {
			out = append(out, name+" missing")
		} else if got != real[name] {
			out = append(out, fmt.Sprintf("%s at rv %d, not %d", name, got, real[name]))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(model)) {
		if _, ok := real[name]; !ok {
			out = append(out, name+" already gone")
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return strings.Join(out, ", ")
}
