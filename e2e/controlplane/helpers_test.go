//go:build e2e

package controlplane_test

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sluicehq/sluice/devenv/controlplane"
)

// waitUp waits until Prometheus has a sample up{job="prometheus"} == 1.
func waitUp(t *testing.T, api promv1.API) {
	t.Helper()
	ctx := t.Context()
	err := controlplane.WaitFor(ctx, 30*time.Second, func() (bool, error) {
		v, _, _, err := api.Query(ctx, `up{job="prometheus"}`, time.Now())
		if err != nil {
			return false, nil
		}
		vec, ok := v.(model.Vector)
		return ok && len(vec) == 1 && vec[0].Value == 1, nil
	})
	if err != nil {
		t.Fatalf("query up: %v", err)
	}
}

// waitPods waits until exactly n pods of app run image on kwok nodes,
// Running and with Ready equal to ready.
func waitPods(t *testing.T, c kubernetes.Interface, ns, app string, n int, image string, ready bool) {
	t.Helper()
	var last string
	err := controlplane.WaitFor(t.Context(), 30*time.Second, func() (bool, error) {
		pods := listPods(t, c, ns, app)
		var b strings.Builder
		ok := len(pods) == n
		for _, p := range pods {
			b.WriteString(p.Name + ":" + p.Spec.Containers[0].Image + ":" + p.Spec.NodeName + ":" + string(p.Status.Phase) + " ")
			if p.Spec.Containers[0].Image != image || !strings.HasPrefix(p.Spec.NodeName, "kwok-node-") ||
				p.Status.Phase != corev1.PodRunning || podReady(&p) != ready {
				ok = false
			}
		}
		last = b.String()
		return ok, nil
	})
	if err != nil {
		t.Fatalf("want %d Running pods of %s on kwok nodes (ready=%v): %v; pods: %s", n, image, ready, err, last)
	}
}

func listPods(t *testing.T, c kubernetes.Interface, ns, app string) []corev1.Pod {
	t.Helper()
	pods, err := c.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// alive reports whether a process with this pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func logTail(t *testing.T, name, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Logf("%s: %v", name, err)
		return
	}
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	t.Logf("--- tail of %s:\n%s", path, data)
}
