package image_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/deploy/image"
)

// checkout makes a git repository holding a chart of appVersion version,
// committed at when.
func checkout(t *testing.T, version string, when time.Time) string {
	t.Helper()
	dir := t.TempDir()
	chart := filepath.Join(dir, image.ChartDir)
	if err := os.MkdirAll(chart, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(chart, "Chart.yaml"), "apiVersion: v2\nname: sluice\nversion: 0.1.0\nappVersion: \""+version+"\"\n")
	write(t, filepath.Join(chart, "values.yaml"), "image:\n  repository: ghcr.io/sluicehq/sluice-controller\n  tag: \"\"\n")
	run(t, dir, when, "init", "-q")
	run(t, dir, when, "add", ".")
	run(t, dir, when, "commit", "-q", "-m", "chart")
	return dir
}

func run(t *testing.T, dir string, when time.Time, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	date := when.Format(time.RFC3339)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func noEnv(string) string { return "" }

func TestDescribe(t *testing.T) {
	when := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	dir := checkout(t, "0.2.0", when)
	commit := run(t, dir, when, "rev-parse", "HEAD")

	s, err := image.Describe(t.Context(), dir, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "0.2.0" || s.Repository != "ghcr.io/sluicehq/sluice-controller" || s.Revision != commit || s.Dirty || !s.Created.Equal(when) {
		t.Errorf("clean checkout: got %+v, want version 0.2.0 of ghcr.io/sluicehq/sluice-controller, revision %s, created %s", s, commit, when)
	}

	epoch := func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "1700000000"
		}
		return ""
	}
	if s, err := image.Describe(t.Context(), dir, epoch); err != nil || s.Created.Unix() != 1700000000 {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000: created %s, %v", s.Created, err)
	}

	write(t, filepath.Join(dir, image.ChartDir, "values.yaml"), "image:\n  repository: ghcr.io/sluicehq/sluice-controller\n  tag: x\n")
	if s, err := image.Describe(t.Context(), dir, noEnv); err != nil || !s.Dirty || s.Revision != commit+"-dirty" {
		t.Errorf("modified checkout: got %+v, %v; want dirty, revision %s-dirty", s, err, commit)
	}
	run(t, dir, when, "checkout", "-q", ".")

	run(t, dir, when, "tag", "v0.2.0")
	if _, err := image.Describe(t.Context(), dir, noEnv); err != nil {
		t.Errorf("tag v0.2.0 on a chart of appVersion 0.2.0: %v", err)
	}
	run(t, dir, when, "tag", "-d", "v0.2.0")
	run(t, dir, when, "tag", "v0.3.0")
	if _, err := image.Describe(t.Context(), dir, noEnv); err == nil || !strings.Contains(err.Error(), "tagged v0.3.0 but") {
		t.Errorf("tag v0.3.0 on a chart of appVersion 0.2.0: got %v, want an error naming both", err)
	}
}
