//go:build e2e

package openkruise_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

// fixture is one test's namespace and workload.
type fixture struct {
	t   *testing.T
	ctx context.Context
	c   client.Client
	ns  string
	gvk schema.GroupVersionKind
	key client.ObjectKey
}

func newFixture(t *testing.T, gvk schema.GroupVersionKind, name string) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	ns := env.Namespace(t)
	return &fixture{t: t, ctx: ctx, c: env.Client, ns: ns, gvk: gvk, key: client.ObjectKey{Namespace: ns, Name: name}}
}

func (f *fixture) create(objects string) {
	f.t.Helper()
	if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(objects)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) get() *unstructured.Unstructured {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(f.gvk)
	if err := f.c.Get(f.ctx, f.key, u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

// patch applies a JSON merge patch to the workload (null removes a field,
// as kubectl does when a field leaves the manifest).
func (f *fixture) patch(mergePatch string) {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(f.gvk)
	u.SetNamespace(f.ns)
	u.SetName(f.key.Name)
	if err := f.c.Patch(f.ctx, u, client.RawPatch(types.MergePatchType, []byte(mergePatch))); err != nil {
		f.t.Fatalf("patching %s: %v", mergePatch, err)
	}
}

// wait waits until cond holds for the workload, and returns it.
func (f *fixture) wait(what string, cond func(u *unstructured.Unstructured) bool) *unstructured.Unstructured {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(f.gvk)
	err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		if err := f.c.Get(f.ctx, f.key, u); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return cond(u), nil
	})
	if err != nil {
		status, _, _ := unstructured.NestedMap(u.Object, "status")
		f.t.Fatalf("waiting for %s: %v\nlast status: %v\npods: %s", what, err, status, f.describePods())
	}
	return u
}

// settled: the stand-in has seen the latest spec, and its status says
// every pod is there and ready with updated pods as given.
func settled(replicas, updated int64) func(u *unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool {
		return statusInt(u, "observedGeneration") == u.GetGeneration() &&
			statusInt(u, "replicas") == replicas && statusInt(u, "readyReplicas") == replicas &&
			statusInt(u, "updatedReplicas") == updated && statusInt(u, "updatedReadyReplicas") == updated
	}
}

func statusInt(u *unstructured.Unstructured, field string) int64 {
	v, _, _ := unstructured.NestedInt64(u.Object, "status", field)
	return v
}

func statusString(u *unstructured.Unstructured, field string) string {
	v, _, _ := unstructured.NestedString(u.Object, "status", field)
	return v
}

// pods lists the workload's pods that are not being deleted, by name.
func (f *fixture) pods() []corev1.Pod {
	f.t.Helper()
	var l corev1.PodList
	if err := f.c.List(f.ctx, &l, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (f *fixture) describePods() string {
	var l corev1.PodList
	if err := f.c.List(f.ctx, &l, client.InNamespace(f.ns)); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range l.Items {
		fmt.Fprintf(&b, "\n  %s %s ready=%v deleting=%v labels=%v", p.Name, p.Status.Phase, podReady(&p), p.DeletionTimestamp != nil, p.Labels)
	}
	return b.String()
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// countBy counts pods by the value of a label.
func countBy(pods []corev1.Pod, label string) map[string]int {
	out := map[string]int{}
	for _, p := range pods {
		out[p.Labels[label]]++
	}
	return out
}

// podWatch follows a namespace's pods from outside, as an invariant
// checker would: the fewest ready pods (not being deleted) ever seen once
// all were first ready, and the order pods were created and deleted in.
type podWatch struct {
	mu       sync.Mutex
	pods     map[string]*corev1.Pod
	full     int
	armed    bool
	minReady int
	added    []string
	deleted  []string
	// readyBelow records, for each pod added, whether every pod with a
	// lower ordinal suffix was ready then (Advanced StatefulSet order).
	readyBelow map[string]bool
	stop       func()
}

func (f *fixture) watchPods(full int) *podWatch {
	f.t.Helper()
	wc, err := client.NewWithWatch(env.ControlPlane.RESTConfig(), client.Options{Scheme: app.Scheme()})
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := wc.Watch(f.ctx, &corev1.PodList{}, client.InNamespace(f.ns))
	if err != nil {
		f.t.Fatal(err)
	}
	pw := &podWatch{pods: map[string]*corev1.Pod{}, full: full, minReady: full, readyBelow: map[string]bool{}, stop: w.Stop}
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			pw.observe(ev.Type, p)
		}
	}()
	f.t.Cleanup(w.Stop)
	return pw
}

func (pw *podWatch) observe(t watch.EventType, p *corev1.Pod) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	_, known := pw.pods[p.Name]
	switch {
	case t == watch.Deleted || p.DeletionTimestamp != nil:
		if known {
			pw.deleted = append(pw.deleted, p.Name)
		}
		delete(pw.pods, p.Name)
	default:
		if !known {
			pw.added = append(pw.added, p.Name)
			below := true
			for name, q := range pw.pods {
				if ordinal(name) < ordinal(p.Name) && !podReady(q) {
					below = false
				}
			}
			pw.readyBelow[p.Name] = below
		}
		pw.pods[p.Name] = p
	}
	ready := 0
	for _, q := range pw.pods {
		if podReady(q) {
			ready++
		}
	}
	if ready >= pw.full {
		pw.armed = true
	}
	if pw.armed {
		pw.minReady = min(pw.minReady, ready)
	}
}

func (pw *podWatch) snapshot() (minReady int, added, deleted []string, readyBelow map[string]bool) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	rb := map[string]bool{}
	for k, v := range pw.readyBelow {
		rb[k] = v
	}
	return pw.minReady, append([]string(nil), pw.added...), append([]string(nil), pw.deleted...), rb
}

// ordinal is the number after a pod name's last "-", or -1.
func ordinal(name string) int {
	n, err := strconv.Atoi(name[strings.LastIndex(name, "-")+1:])
	if err != nil {
		return -1
	}
	return n
}
