//go:build e2e

package gitops_test

import (
	"context"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"github.com/sluicehq/sluice/e2e/framework"
)

// recorder keeps every version of the objects of some kinds in a
// namespace, as watches deliver them, so that a test can capture a state
// that lasts a moment (a batch coming up, a routing grace period,
// finalising) without racing it.
type recorder struct {
	mu   sync.Mutex
	seen map[schema.GroupVersionResource][]*unstructured.Unstructured
}

func record(ctx context.Context, t *testing.T, dyn dynamic.Interface, ns string, gvrs ...schema.GroupVersionResource) *recorder {
	r := &recorder{seen: map[schema.GroupVersionResource][]*unstructured.Unstructured{}}
	for _, gvr := range gvrs {
		ri := dyn.Resource(gvr).Namespace(ns)
		// The first list is taken before the test creates anything, so
		// nothing written afterwards is missed.
		list, err := ri.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("listing %s: %v", gvr.Resource, err)
		}
		go r.watch(ctx, ri, gvr, list.GetResourceVersion())
	}
	return r
}

// watch records events until ctx ends, watching again from the last
// version seen when the API server closes a watch.
func (r *recorder) watch(ctx context.Context, ri dynamic.ResourceInterface, gvr schema.GroupVersionResource, rv string) {
	for ctx.Err() == nil {
		w, err := ri.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(*unstructured.Unstructured)
			if ev.Type == watch.Error || !ok {
				rv = "" // too old: start again from the current state
				continue
			}
			rv = u.GetResourceVersion()
			if ev.Type == watch.Added || ev.Type == watch.Modified {
				r.mu.Lock()
				r.seen[gvr] = append(r.seen[gvr], u.DeepCopy())
				r.mu.Unlock()
			}
		}
		w.Stop()
	}
}

// first waits for the first recorded version of a gvr object that matches.
func (r *recorder) first(ctx context.Context, t *testing.T, gvr schema.GroupVersionResource, what string, match func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	err := framework.Poll(ctx, 3*time.Minute, func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, u := range r.seen[gvr] {
			if match(u) {
				found = u
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		r.mu.Lock()
		n := len(r.seen[gvr])
		r.mu.Unlock()
		t.Fatalf("no %s was %s (%d versions seen): %v", gvr.Resource, what, n, err)
	}
	return found
}
