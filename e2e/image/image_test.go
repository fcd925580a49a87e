//go:build e2e

package image_test

import (
	"archive/tar"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/deploy/image"
	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

// Two builds of one checkout are the same image, byte for byte, and what
// make image writes reads back as that image: the OCI layout with its
// digest, the docker-load tarball with its config (the image ID) and layers.
func TestImageIsReproducible(t *testing.T) {
	d1, err := built.first.Digest()
	if err != nil {
		t.Fatal(err)
	}
	d2, err := built.second.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d1 != d2 {
		t.Fatalf("two builds of %s: digests %s and %s", built.src.Revision, d1, d2)
	}
	if built.result.Digest != d1.String() {
		t.Errorf("make image reported %s, the image is %s", built.result.Digest, d1)
	}
	idx, err := layout.ImageIndexFromPath(built.result.Layout)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the OCI layout is not valid: %v", err)
	}
	fromLayout, err := idx.Image(d1)
	if err != nil {
		t.Fatalf("the OCI layout does not hold %s: %v", d1, err)
	}
	if err := validate.Image(fromLayout); err != nil {
		t.Fatal(err)
	}
	fromTarball, err := tarball.ImageFromPath(built.result.Tarball, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := built.first.ConfigName()
	if got, _ := fromTarball.ConfigName(); got != want {
		t.Errorf("the tarball holds image ID %s, want %s", got, want)
	}
}

// The image runs the controller of this checkout as user 65532, with no
// shell, its version and revision in its labels and in the binary, and the
// CA roots compiled in.
func TestImageHoldsTheController(t *testing.T) {
	cfg, err := built.first.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/usr/local/bin/sluice-controller" {
		t.Errorf("user %q entrypoint %q, want 65532:65532 and /usr/local/bin/sluice-controller", c.User, c.Entrypoint)
	}
	for k, want := range map[string]string{
		image.LabelSource:   "https://github.com/sluicehq/sluice",
		image.LabelVersion:  built.src.Version,
		image.LabelRevision: built.src.Revision,
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	for _, name := range files(t, built.first) {
		switch path.Base(name) {
		case "sh", "bash", "ash", "dash", "busybox":
			t.Errorf("the image holds a shell: %s", name)
		}
	}

	info, err := buildinfo.ReadFile(built.binary)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["GOOS"] != "linux" {
		t.Errorf("the binary is not a static -trimpath build for linux: %v", settings)
	}
	roots := false
	for _, d := range info.Deps {
		roots = roots || d.Path == "golang.org/x/crypto/x509roots/fallback"
	}
	if !roots {
		t.Error("the binary does not carry golang.org/x/crypto/x509roots/fallback: an HTTPS Prometheus could not be verified FROM scratch")
	}
	out, err := exec.Command(built.binary, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("sluice-controller --version: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("sluice-controller %s (revision %s, ", built.src.Version, built.src.Revision); !strings.HasPrefix(string(out), want) {
		t.Errorf("--version printed %q, want it to start with %q", out, want)
	}
}

// The chart's defaults run the image make image builds: its repository,
// tagged with its version.
func TestChartRunsTheImage(t *testing.T) {
	helm := filepath.Join(controlplane.BinDir(), "helm")
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), helm, "template", "sluice", filepath.Join(framework.RepoRoot(), image.ChartDir), "--namespace", "sluice-system")
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	objs, err := manifest.Objects(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		d := &appsv1.Deployment{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
			t.Fatal(err)
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != built.result.Ref {
			t.Errorf("the chart runs %s, make image builds %s", got, built.result.Ref)
		}
		return
	}
	t.Fatal("the chart renders no Deployment")
}

// The manager of this environment is the image's binary, and it releases:
// the guide's Example 1, an error-rate analysis against Prometheus after
// every step, a healthy version promoted to the end.
func TestTheImagesControllerReleases(t *testing.T) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", env.Manager.PID()))
	if err != nil {
		t.Fatal(err)
	}
	if exe != built.binary {
		t.Fatalf("the manager runs %s, not the image's binary %s", exe, built.binary)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	c := env.Client
	if err := framework.CreateExample1(ctx, c, ns, ""); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKey{Namespace: ns, Name: "rollouts-demo"}
	wait := func(what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
		t.Helper()
		r, err := framework.WaitRollout(ctx, c, key, 3*time.Minute, cond)
		if err != nil {
			t.Fatalf("waiting for %s: %v\nmanager log:\n%s", what, err, env.Manager.LogTail())
		}
		return r
	}
	wait("Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	const next = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
	if err := framework.SetImage(ctx, c, ns, "echoserver", next); err != nil {
		t.Fatal(err)
	}
	r := wait("the release to complete", func(r *v1beta1.Rollout) bool {
		return r.Status.LastRelease != nil && r.Status.Phase == v1beta1.RolloutPhaseHealthy
	})
	if r.Status.LastRelease.Outcome != v1beta1.OutcomeCompleted {
		t.Fatalf("the release ended %s: %s", r.Status.LastRelease.Outcome, r.Status.Message)
	}
	var runs analysisv1alpha1.AnalysisRunList
	if err := c.List(ctx, &runs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 3 {
		t.Errorf("%d AnalysisRuns, want one per step", len(runs.Items))
	}
	for _, ar := range runs.Items {
		if ar.Status.Phase != analysisv1alpha1.AnalysisSuccessful {
			t.Errorf("run %s: %s %s", ar.Name, ar.Status.Phase, ar.Status.Message)
		}
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"app": "echoserver"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image != next {
			t.Errorf("pod %s still runs %s", p.Name, p.Spec.Containers[0].Image)
		}
	}
}

// files lists the image's filesystem.
func files(t *testing.T, img v1.Image) []string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// extractFile writes the image's file name to to, executable.
func extractFile(img v1.Image, name, to string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the image holds no %s", name)
		}
		if err != nil {
			return err
		}
		if h.Name != name {
			continue
		}
		f, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
}
