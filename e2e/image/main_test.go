//go:build e2e

// Package image_test builds the sluice-controller image as `make image`
// does (deploy/image), twice, reads it back with go-containerregistry, and
// runs the binary it holds as the manager of the e2e environment: every
// test here runs against the image's controller, not one built from the
// source tree.
package image_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/deploy/image"
	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
	built   images
)

// images is what TestMain built.
type images struct {
	src image.Source
	// first and second are two builds of the same source.
	first, second v1.Image
	result        image.Result
	// binary is sluice-controller as extracted from the first image.
	binary string
}

// controller is the program `make image` builds (deploy/image/build).
var controller = image.Program{
	Package: "./cmd/sluice-controller", Name: "sluice-controller",
	VersionVariable: app.VersionVariable, RevisionVariable: app.RevisionVariable,
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e-image-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := build(dir); err != nil {
		_ = os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "building the image:", err)
		os.Exit(1)
	}
	framework.MainWithOptions(m, framework.Options{
		Metrics: true,
		// The image's files move into the environment's folder, which
		// goes (or stays, with SLUICE_E2E_KEEP) with it.
		ManagerCommand: func(_ context.Context, envDir string) ([]string, error) {
			to := filepath.Join(envDir, "image")
			if err := os.Rename(dir, to); err != nil {
				return nil, err
			}
			built.binary = filepath.Join(to, filepath.Base(built.binary))
			built.result.Layout = filepath.Join(to, "out", "oci")
			built.result.Tarball = filepath.Join(to, "out", filepath.Base(built.result.Tarball))
			return []string{built.binary}, nil
		},
	}, &env, &metrics)
}

// build makes the image twice from this checkout, writes the first as
// make image does and extracts its binary, all in dir.
func build(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	src, err := image.Describe(ctx, framework.RepoRoot(), os.Getenv)
	if err != nil {
		return err
	}
	built.src = src
	for i, img := range []*v1.Image{&built.first, &built.second} {
		work := filepath.Join(dir, fmt.Sprintf("build-%d", i+1))
		if err := os.MkdirAll(work, 0o755); err != nil {
			return err
		}
		if *img, err = image.Build(ctx, src, controller, runtime.GOARCH, work); err != nil {
			return err
		}
	}
	ref, err := image.Tag(src.Repository, src.Version)
	if err != nil {
		return err
	}
	if built.result, err = (image.Output{Dir: filepath.Join(dir, "out")}).Write(built.first, ref, src.Revision, runtime.Version()); err != nil {
		return err
	}
	built.binary = filepath.Join(dir, "sluice-controller")
	if err := extractFile(built.first, "usr/local/bin/sluice-controller", built.binary); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "built %s %s twice in %s\n", built.result.Ref, built.result.Digest, time.Since(start).Round(time.Second))
	return nil
}
