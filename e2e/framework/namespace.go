//go:build e2e

package framework

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/devenv/controlplane"
)

// TestNamespaceLabel is set on namespaces made by NewNamespace, with the
// (sanitised) name of the test as value.
const TestNamespaceLabel = "sluice.dev/e2e-test"

var notDNSLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a namespace on cp for the test, named after it with
// a random suffix, waits until pods can be created in it (its default
// ServiceAccount exists), and deletes it when the test ends (without
// waiting for the deletion to finish). It fails the test on error.
func NewNamespace(t testing.TB, cp *controlplane.ControlPlane) string {
	t.Helper()
	base := strings.Trim(notDNSLabel.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	ctx, c := t.Context(), cp.Client()
	ns, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "e2e-" + base + "-",
			Labels:       map[string]string{TestNamespaceLabel: base},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace for %s: %v", t.Name(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete namespace %s: %v", ns.Name, err)
		}
	})
	if err := cp.WaitServiceAccount(ctx, ns.Name); err != nil {
		t.Fatalf("namespace %s: default ServiceAccount: %v", ns.Name, err)
	}
	return ns.Name
}
