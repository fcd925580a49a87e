//go:build e2e

package plugin_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/cmd/kubectl-sluice/cli"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

const (
	imageV1  = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	imageV2  = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
	imageBad = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3-errors"
	name     = "rollouts-demo"
)

type fixture struct {
	t   *testing.T
	ctx context.Context
	ns  string
	c   client.Client
}

func newFixture(t *testing.T, timeout time.Duration) *fixture {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return &fixture{t: t, ctx: ctx, ns: env.Namespace(t), c: env.Client}
}

// result is what one run of the plugin did.
type result struct {
	code        int
	out, errOut string
}

// sluice runs `kubectl sluice args...` in process against the test
// cluster, in the test's namespace, as a script would: output not a
// terminal.
func (f *fixture) sluice(args ...string) result {
	f.t.Helper()
	var out, errOut bytes.Buffer
	all := append(append([]string{}, args...), "--kubeconfig", env.ControlPlane.KubeconfigPath(), "-n", f.ns)
	code := cli.Run(f.ctx, all, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	f.t.Logf("kubectl sluice %s -> exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return result{code: code, out: out.String(), errOut: errOut.String()}
}

// ok runs the plugin and fails the test unless it exits 0.
func (f *fixture) ok(args ...string) string {
	f.t.Helper()
	r := f.sluice(args...)
	if r.code != 0 {
		f.t.Fatalf("kubectl sluice %s: exit %d: %s", strings.Join(args, " "), r.code, r.errOut)
	}
	return r.out
}

// refused runs the plugin and checks that it refuses (exit 3) with a
// message containing each of why.
func (f *fixture) refused(args []string, why ...string) {
	f.t.Helper()
	r := f.sluice(args...)
	if r.code != cli.ExitRefused {
		f.t.Errorf("kubectl sluice %s: exit %d, want %d (refused)", strings.Join(args, " "), r.code, cli.ExitRefused)
	}
	for _, w := range why {
		if !strings.Contains(r.errOut, w) {
			f.t.Errorf("kubectl sluice %s: %q lacks %q", strings.Join(args, " "), r.errOut, w)
		}
	}
}

// getRow runs `kubectl sluice get NAME` and returns its row by column.
func (f *fixture) getRow() map[string]string {
	f.t.Helper()
	lines := strings.Split(strings.TrimSpace(f.ok("get", name)), "\n")
	if len(lines) != 2 {
		f.t.Fatalf("get printed %d lines, want a header and a row", len(lines))
	}
	cols := regexp.MustCompile(`\s{2,}`)
	header, cells := cols.Split(lines[0], -1), cols.Split(lines[1], -1)
	if len(header) != len(cells) {
		f.t.Fatalf("header %q and row %q do not match", header, cells)
	}
	row := map[string]string{}
	for i, h := range header {
		row[h] = cells[i]
	}
	return row
}

// startExample1 creates the guide's echoserver (5 pods) and Ingress, then
// the given files (relative to the repository), waits for the Rollout to
// be Healthy and releases image.
func (f *fixture) startExample1(image string, files ...string) {
	f.t.Helper()
	root := framework.RepoRoot()
	all := append([]string{"docs/examples/guide/echoserver.yaml", "docs/examples/guide/example1-ingress.yaml"}, files...)
	for _, file := range all {
		if _, err := manifest.CreateFile(f.ctx, f.c, f.ns, filepath.Join(root, file)); err != nil {
			f.t.Fatal(err)
		}
	}
	f.waitRollout("Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	if image != "" {
		f.setImage(image)
	}
}

func (f *fixture) deployment() *appsv1.Deployment {
	d := &appsv1.Deployment{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver"}, d); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) setImage(image string) {
	f.t.Helper()
	if err := framework.SetImage(f.ctx, f.c, f.ns, "echoserver", image); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) rollout() *v1beta1.Rollout {
	r := &v1beta1.Rollout{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, r); err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) waitRollout(what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
	f.t.Helper()
	r, err := framework.WaitRollout(f.ctx, f.c, client.ObjectKey{Namespace: f.ns, Name: name}, 3*time.Minute, cond)
	if err != nil {
		f.t.Fatalf("waiting for %s: %v\nmanager log:\n%s", what, err, env.Manager.LogTail())
	}
	return r
}

func (f *fixture) waitStep(step int32, state v1beta1.CanaryStepState) *v1beta1.Rollout {
	f.t.Helper()
	return f.waitRollout(fmt.Sprintf("step %d %s", step, state), func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseProgressing && reason(r) == v1beta1.ProgressingReasonInRolling &&
			r.Status.CurrentStepIndex == step && r.Status.CurrentStepState == state
	})
}

func reason(r *v1beta1.Rollout) string {
	for _, c := range r.Status.Conditions {
		if c.Type == v1beta1.RolloutConditionProgressing {
			return c.Reason
		}
	}
	return ""
}

func completed(r *v1beta1.Rollout) bool {
	return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
}

func succeeded(r *v1beta1.Rollout) corev1.ConditionStatus {
	for _, c := range r.Status.Conditions {
		if c.Type == v1beta1.RolloutConditionSucceeded {
			return c.Status
		}
	}
	return ""
}

func aborted(r *v1beta1.Rollout) bool { return reason(r) == "Aborted" }

// pods counts the echoserver's pods (not being deleted) running image.
func (f *fixture) pods(image string) int {
	var list corev1.PodList
	if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns), client.MatchingLabels{"app": "echoserver"}); err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image {
			n++
		}
	}
	return n
}

func (f *fixture) waitPods(image string, n int) {
	f.t.Helper()
	if err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) { return f.pods(image) == n, nil }); err != nil {
		f.t.Fatalf("%d pods of %s, want %d", f.pods(image), image, n)
	}
}

func overrides(r *v1beta1.Rollout) []string {
	var out []string
	if r.Status.Analysis != nil {
		for _, o := range r.Status.Analysis.Overrides {
			out = append(out, o.Action)
		}
	}
	return out
}

func contains(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}
