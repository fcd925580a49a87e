package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Output is where an image is written, a folder of:
//
//	oci/        the OCI image layout, its one image named by its tag
//	IMAGE.tar   the same image in `docker save` form, tagged REPOSITORY:TAG
//	build.json  what it was built from (Result), to skip a build that is up to date
type Output struct{ Dir string }

// Layout is the OCI image layout's folder.
func (o Output) Layout() string { return filepath.Join(o.Dir, "oci") }

// Tarball is the `docker save` tarball of the image named name.
func (o Output) Tarball(name string) string { return filepath.Join(o.Dir, name+".tar") }

func (o Output) record() string { return filepath.Join(o.Dir, "build.json") }

// Result is what Write wrote, and what it was built from.
type Result struct {
	// Ref is REPOSITORY:TAG, the tag being the version.
	Ref string `json:"ref"`
	// Digest is the image manifest's, sha256:...
	Digest   string `json:"digest"`
	Revision string `json:"revision"`
	Platform string `json:"platform"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	Layout    string `json:"layout"`
	Tarball   string `json:"tarball"`
}

// Write saves img, tagged ref, into o: the layout and the tarball are
// written beside the old ones and then moved in place, so a reader never
// sees half an image. revision and goVersion are recorded for UpToDate.
func (o Output) Write(img v1.Image, ref name.Tag, revision, goVersion string) (Result, error) {
	r := Result{Revision: revision, GoVersion: goVersion}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return r, err
	}
	digest, err := img.Digest()
	if err != nil {
		return r, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return r, err
	}
	r.Ref, r.Digest, r.Platform = ref.String(), digest.String(), cfg.Platform().String()
	base := filepath.Base(ref.RepositoryStr())
	r.Layout, r.Tarball = o.Layout(), o.Tarball(base)

	tmpLayout := r.Layout + ".new"
	if err := os.RemoveAll(tmpLayout); err != nil {
		return r, err
	}
	p, err := layout.Write(tmpLayout, empty.Index)
	if err != nil {
		return r, err
	}
	// WriteImage and a descriptor of our own rather than AppendImage,
	// which would also set artifactType, a field for artifacts, not images.
	if err := p.WriteImage(img); err != nil {
		return r, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return r, err
	}
	size, err := img.Size()
	if err != nil {
		return r, err
	}
	if err := p.AppendDescriptor(v1.Descriptor{
		MediaType: mt, Size: size, Digest: digest,
		Annotations: map[string]string{LabelRefName: ref.TagStr()},
	}); err != nil {
		return r, err
	}
	tmpTar := r.Tarball + ".new"
	if err := tarball.WriteToFile(tmpTar, ref, img); err != nil {
		return r, err
	}
	if err := os.RemoveAll(r.Layout); err != nil {
		return r, err
	}
	if err := os.Rename(tmpLayout, r.Layout); err != nil {
		return r, err
	}
	if err := os.Rename(tmpTar, r.Tarball); err != nil {
		return r, err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return r, err
	}
	return r, os.WriteFile(o.record(), append(b, '\n'), 0o644)
}

// UpToDate returns the last Result when it was built from the same clean
// commit, toolchain, platform and ref and its files are still there: a
// dirty work tree is always built again.
func (o Output) UpToDate(src Source, ref name.Tag, platform, goVersion string) (Result, bool) {
	var r Result
	b, err := os.ReadFile(o.record())
	if err != nil || json.Unmarshal(b, &r) != nil {
		return r, false
	}
	if src.Dirty || r.Revision != src.Revision || r.Ref != ref.String() || r.Platform != platform || r.GoVersion != goVersion {
		return r, false
	}
	for _, f := range []string{filepath.Join(r.Layout, "index.json"), r.Tarball} {
		if _, err := os.Stat(f); err != nil {
			return r, false
		}
	}
	return r, true
}

// Tag is the image's reference: the repository, tagged with the version.
func Tag(repository, version string) (name.Tag, error) {
	t, err := name.NewTag(repository+":"+version, name.StrictValidation)
	if err != nil {
		return t, fmt.Errorf("image %s:%s: %w", repository, version, err)
	}
	return t, nil
}
