package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"
)

// ChartDir is the Helm chart, relative to the repository: its appVersion
// is the image's version and tag, its values' image.repository the
// image's repository, so `helm install` with the defaults runs what
// `make image` built.
const ChartDir = "deploy/helm/sluice"

// Source is the checkout an image is built from.
type Source struct {
	// Dir is the repository's root.
	Dir string
	// Repository is where the image is pushed by default (the chart's
	// image.repository), e.g. ghcr.io/sluicehq/sluice-controller.
	Repository string
	// Version is the chart's appVersion: the image's tag.
	Version string
	// Revision is the commit, with "-dirty" when tracked files differ
	// from it.
	Revision string
	// Dirty says the work tree has uncommitted changes to tracked files:
	// the image is not what the commit alone gives.
	Dirty bool
	// Created is the commit's time, or SOURCE_DATE_EPOCH when set.
	Created time.Time
}

// Describe reads what an image of the checkout in dir is: the version and
// repository from the chart, the revision and time from git. getenv reads
// SOURCE_DATE_EPOCH (os.Getenv). A commit tagged vX.Y.Z must be the
// chart's appVersion X.Y.Z: the tag, the chart and the image agree.
func Describe(ctx context.Context, dir string, getenv func(string) string) (Source, error) {
	s := Source{Dir: dir}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := readYAML(filepath.Join(dir, ChartDir, "Chart.yaml"), &chart); err != nil {
		return s, err
	}
	var values struct {
		Image struct {
			Repository string `json:"repository"`
		} `json:"image"`
	}
	if err := readYAML(filepath.Join(dir, ChartDir, "values.yaml"), &values); err != nil {
		return s, err
	}
	s.Version, s.Repository = chart.AppVersion, values.Image.Repository
	if s.Version == "" || s.Repository == "" {
		return s, fmt.Errorf("%s: Chart.yaml's appVersion and values.yaml's image.repository must be set", ChartDir)
	}

	commit, err := git(ctx, dir, "rev-parse", "HEAD")
	if err != nil {
		return s, err
	}
	status, err := git(ctx, dir, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return s, err
	}
	s.Revision, s.Dirty = commit, status != ""
	if s.Dirty {
		s.Revision += "-dirty"
	}
	if tag, err := git(ctx, dir, "describe", "--tags", "--exact-match", "--match", "v[0-9]*", "HEAD"); err == nil && tag != "v"+s.Version {
		return s, fmt.Errorf("commit %s is tagged %s but %s/Chart.yaml's appVersion is %s: make them agree", commit, tag, ChartDir, s.Version)
	}

	epoch := getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = git(ctx, dir, "log", "-1", "--format=%ct", "HEAD"); err != nil {
			return s, err
		}
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return s, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds", epoch)
	}
	s.Created = time.Unix(secs, 0).UTC()
	return s, nil
}

// Program says which Go program the image runs and how its version is
// stamped.
type Program struct {
	// Package is the main package, relative to Source.Dir, e.g.
	// ./cmd/sluice-controller.
	Package string
	// Name is the binary's name (and the image's title).
	Name        string
	Description string
	// VersionVariable and RevisionVariable are set with -ldflags -X.
	VersionVariable, RevisionVariable string
}

// SourceURL is the repository's address, the image's source label.
const SourceURL = "https://github.com/sluicehq/sluice"

// Build compiles p for linux/goarch from src (static, -trimpath, no VCS
// stamping: the version and revision are passed with -X) into workDir and
// assembles its image.
func Build(ctx context.Context, src Source, p Program, goarch, workDir string) (v1.Image, error) {
	bin := filepath.Join(workDir, p.Name)
	ldflags := fmt.Sprintf("-s -w -X %s=%s -X %s=%s", p.VersionVariable, src.Version, p.RevisionVariable, src.Revision)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, p.Package)
	cmd.Dir = src.Dir
	// GOFLAGS is cleared so that a developer's setting (-race, -mod=...)
	// cannot change the binary.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build %s for linux/%s: %v\n%s", p.Package, goarch, err, out)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	return Assemble(binary, Metadata{
		Name: p.Name, Description: p.Description, Source: SourceURL,
		Version: src.Version, Revision: src.Revision, Created: src.Created,
		Platform: v1.Platform{OS: "linux", Architecture: goarch},
	})
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

func readYAML(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
