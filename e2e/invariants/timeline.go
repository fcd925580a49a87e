package invariants

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"time"
)

// Entry is one line of the timeline: an event the checker evaluated, or a
// note on what it concluded (a release opened, a check suspended).
type Entry struct {
	Time time.Time
	// RV is the event's resourceVersion (for a note, the last one applied).
	RV   uint64
	Type string // ADDED, MODIFIED, DELETED, or NOTE
	Kind string
	Name string
	What string
	// Late marks an event delivered after events with higher
	// resourceVersions had already been evaluated.
	Late bool
}

func (e Entry) String() string {
	late := ""
	if e.Late {
		late = " (late)"
	}
	if e.Type == "NOTE" {
		return fmt.Sprintf("%s rv=%-8d %s%s", e.Time.Format("15:04:05.000"), e.RV, e.What, late)
	}
	return fmt.Sprintf("%s rv=%-8d %-8s %s/%s: %s%s", e.Time.Format("15:04:05.000"), e.RV, e.Type, e.Kind, e.Name, e.What, late)
}

// timeline keeps the last n entries (a ring: the memory stays bounded
// however long the test runs).
type timeline struct {
	buf  []Entry
	next int
	full bool
}

func newTimeline(n int) *timeline { return &timeline{buf: make([]Entry, max(n, 1))} }

func (t *timeline) add(e Entry) {
	t.buf[t.next] = e
	t.next = (t.next + 1) % len(t.buf)
	if t.next == 0 {
		t.full = true
	}
}

// last returns the last n entries, oldest first.
func (t *timeline) last(n int) []Entry {
	var all []Entry
	if t.full {
		all = append(all, t.buf[t.next:]...)
	}
	all = append(all, t.buf[:t.next]...)
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// summary is the one line a view contributes to the timeline.
func summary(v any) string {
	switch x := v.(type) {
	case *podView:
		rev := x.Labels["pod-template-hash"]
		if r := x.Labels["controller-revision-hash"]; r != "" {
			rev = r
		}
		s := fmt.Sprintf("revision %s ready=%t", rev, x.Ready)
		if x.Gone {
			s += " gone"
		}
		return s
	case *replicaSetView:
		return fmt.Sprintf("replicas %d template %s", x.Replicas, shortKey(x.TemplateKey))
	case *workloadView:
		s := fmt.Sprintf("replicas %d template %s generation %d/%d status %d updated %d ready %d available %d",
			x.Replicas, shortKey(x.TemplateKey), x.ObservedGeneration, x.Generation, x.StatusReplicas, x.Updated, x.Ready, x.Available)
		if x.UpdateRevision != "" {
			s += fmt.Sprintf(" revisions %s→%s", x.CurrentRevision, x.UpdateRevision)
		}
		if p, ok := x.Spec["paused"].(bool); ok && p {
			s += " paused"
		}
		if st, ok := x.Spec["strategy"].(map[string]any); ok {
			s += fmt.Sprintf(" strategy %v", st["type"])
		}
		if us, ok := x.Spec["updateStrategy"]; ok {
			s += fmt.Sprintf(" updateStrategy %v", us)
		}
		if x.Annotations[inProgressingAnnotation] != "" {
			s += " in-progressing"
		}
		return s
	case *serviceView:
		return "selector " + labelString(x.Selector)
	case *endpointSliceView:
		return fmt.Sprintf("service %s, %d ready endpoints", x.Service, x.Ready)
	case *ingressView:
		isCanary, w, match := x.canary()
		if !isCanary {
			return "backends " + strings.Join(x.Backends, ",")
		}
		return fmt.Sprintf("canary weight %g%% match %t, backends %s", w, match, strings.Join(x.Backends, ","))
	case *httpRouteView:
		var rules []string
		for _, r := range x.Rules {
			var bs []string
			for _, b := range r.Backends {
				bs = append(bs, fmt.Sprintf("%s:%d", b.Name, b.Weight))
			}
			rules = append(rules, "["+strings.Join(bs, " ")+"]")
		}
		return "rules " + strings.Join(rules, " ")
	case *analysisRunView:
		return fmt.Sprintf("rollout %s step %d phase %s terminate %t", x.Rollout, x.Step, x.Phase, x.Terminate)
	case *rolloutView:
		s := fmt.Sprintf("phase %s step %d state %s next %d", x.Status.Phase, x.Status.Step, x.Status.State, x.Status.Next)
		for _, k := range []string{"sluice.dev/abort", "sluice.dev/retry", "sluice.dev/promote"} {
			if v := x.Annotations[k]; v != "" {
				s += fmt.Sprintf(" %s=%s", k, v)
			}
		}
		if x.Spec.Disabled {
			s += " disabled"
		}
		if x.Spec.Strategy.Paused {
			s += " paused"
		}
		if x.Deleting {
			s += " deleting"
		}
		return s
	}
	return ""
}

func labelString(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// shortKey names a template by a short hash of its key, to tell templates
// apart in the timeline.
func shortKey(key string) string {
	if key == "" {
		return "-"
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return fmt.Sprintf("%08x", h.Sum32())
}
