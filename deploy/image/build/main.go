// Command build is `make image`: it builds the sluice-controller image
// from this checkout (package deploy/image) into an OCI layout and a
// `docker save` tarball, and does nothing when the last build is of the
// same clean commit.
//
//	go run ./deploy/image/build [-out bin/image] [-arch amd64] [-force]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/deploy/image"
)

// Controller is the program the image runs.
var Controller = image.Program{
	Package:          "./cmd/sluice-controller",
	Name:             "sluice-controller",
	Description:      "Sluice's manager: progressive delivery for Kubernetes (Kruise Rollout API, PromQL analysis)",
	VersionVariable:  app.VersionVariable,
	RevisionVariable: app.RevisionVariable,
}

func main() {
	out := flag.String("out", "bin/image", "folder the OCI layout and the tarball are written to")
	arch := flag.String("arch", runtime.GOARCH, "the image's CPU architecture (GOARCH); the OS is linux")
	force := flag.Bool("force", false, "build even when the last build is up to date")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out, *arch, *force); err != nil {
		fmt.Fprintln(os.Stderr, "make image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, arch string, force bool) error {
	dir, err := os.Getwd()
	if err != nil {
		return err
	}
	src, err := image.Describe(ctx, dir, os.Getenv)
	if err != nil {
		return err
	}
	ref, err := image.Tag(src.Repository, src.Version)
	if err != nil {
		return err
	}
	goVersion, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return fmt.Errorf("go env GOVERSION: %w", err)
	}
	o := image.Output{Dir: out}
	if r, ok := o.UpToDate(src, ref, "linux/"+arch, strings.TrimSpace(string(goVersion))); ok && !force {
		fmt.Printf("%s %s is up to date (revision %s)\n", r.Ref, r.Digest, r.Revision)
		report(r)
		return nil
	}
	if src.Dirty {
		fmt.Fprintf(os.Stderr, "make image: the work tree has uncommitted changes: the image is labelled revision %s\n", src.Revision)
	}
	work, err := os.MkdirTemp("", "sluice-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	img, err := image.Build(ctx, src, Controller, arch, work)
	if err != nil {
		return err
	}
	r, err := o.Write(img, ref, src.Revision, strings.TrimSpace(string(goVersion)))
	if err != nil {
		return err
	}
	fmt.Printf("built %s %s (revision %s, linux/%s)\n", r.Ref, r.Digest, r.Revision, arch)
	report(r)
	return nil
}

// report says where the image is and how to push it.
func report(r image.Result) {
	tag := r.Ref[strings.LastIndex(r.Ref, ":")+1:]
	fmt.Printf("  OCI layout  %s   skopeo copy oci:%s:%s docker://%s\n", r.Layout, r.Layout, tag, r.Ref)
	fmt.Printf("  tarball     %s   docker load -i %s, or crane push %s %s\n", r.Tarball, filepath.Base(r.Tarball), r.Tarball, r.Ref)
}
