package image_test

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/sluicehq/sluice/deploy/image"
)

// hello is a small program stamped like sluice-controller, so that the
// image's making is tested in seconds; e2e/image builds the real one.
var hello = image.Program{
	Package: "./deploy/image/testdata/hello", Name: "hello", Description: "a stand-in",
	VersionVariable: "main.version", RevisionVariable: "main.revision",
}

var source = image.Source{
	Dir:        repoRoot(),
	Repository: "registry.example/sluice/hello",
	Version:    "1.2.3",
	Revision:   "0123456789abcdef0123456789abcdef01234567",
	Created:    time.Date(2026, 11, 3, 10, 20, 30, 0, time.UTC),
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// The same source built twice gives the same digest, and what Write saves
// reads back as that image, from the OCI layout and from the tarball.
func TestBuildIsReproducibleAndReadsBack(t *testing.T) {
	ctx := t.Context()
	first, err := image.Build(ctx, source, hello, runtime.GOARCH, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	second, err := image.Build(ctx, source, hello, runtime.GOARCH, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d1, d2 := digest(t, first), digest(t, second)
	if d1 != d2 {
		t.Fatalf("two builds of one source: digests %s and %s", d1, d2)
	}
	if err := validate.Image(first); err != nil {
		t.Fatalf("the image is not valid: %v", err)
	}

	ref, err := image.Tag(source.Repository, source.Version)
	if err != nil {
		t.Fatal(err)
	}
	out := image.Output{Dir: t.TempDir()}
	r, err := out.Write(first, ref, source.Revision, runtime.Version())
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest != d1.String() || r.Ref != "registry.example/sluice/hello:1.2.3" {
		t.Errorf("Write reported %s %s, want %s %s", r.Ref, r.Digest, "registry.example/sluice/hello:1.2.3", d1)
	}

	fromLayout := layoutImage(t, out.Layout(), "1.2.3")
	if got := digest(t, fromLayout); got != d1 {
		t.Errorf("the OCI layout holds %s, want %s", got, d1)
	}
	fromTarball, err := tarball.ImageFromPath(out.Tarball("hello"), &ref)
	if err != nil {
		t.Fatalf("the tarball does not load as %s: %v", ref, err)
	}
	if err := validate.Image(fromTarball); err != nil {
		t.Fatalf("the tarball's image is not valid: %v", err)
	}
	// The docker save form keeps no manifest (docker load makes its own):
	// the image is its config, whose digest is the image ID, and layers.
	if got, want := configDigest(t, fromTarball), configDigest(t, first); got != want {
		t.Errorf("the tarball holds image ID %s, want %s", got, want)
	}
	if got, want := layerDigests(t, fromTarball), layerDigests(t, first); got != want {
		t.Errorf("the tarball holds layers %s, want %s", got, want)
	}
}

// What the image is: OCI media types, the non-root user, the entrypoint,
// the labels, one layer with exactly the expected files (no shell), and a
// static binary that prints the stamped version.
func TestImageContents(t *testing.T) {
	img, err := image.Build(t.Context(), source, hello, runtime.GOARCH, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want %s", mt, types.OCIManifestSchema1)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("config %s and layers %v, want %s and one %s", m.Config.MediaType, m.Layers, types.OCIConfigJSON, types.OCILayer)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cfg.Config.User)
	}
	if got := strings.Join(cfg.Config.Entrypoint, " "); got != "/usr/local/bin/hello" || len(cfg.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q and cmd %q, want /usr/local/bin/hello and none", got, cfg.Config.Cmd)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH || !cfg.Created.Equal(source.Created) {
		t.Errorf("platform %s/%s created %s, want linux/%s created %s", cfg.OS, cfg.Architecture, cfg.Created, runtime.GOARCH, source.Created)
	}
	want := map[string]string{
		"org.opencontainers.image.source":   "https://github.com/sluicehq/sluice",
		"org.opencontainers.image.version":  "1.2.3",
		"org.opencontainers.image.revision": source.Revision,
		"org.opencontainers.image.created":  "2026-11-03T10:20:30Z",
		"org.opencontainers.image.title":    "hello",
	}
	for k, v := range want {
		if cfg.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Config.Labels[k], v)
		}
		if m.Annotations[k] != v {
			t.Errorf("manifest annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}

	files := extract(t, img)
	var names []string
	for n, f := range files {
		names = append(names, n)
		if f.ModTime.Unix() != source.Created.Unix() {
			t.Errorf("%s is dated %s, want the commit's time %s", n, f.ModTime, source.Created)
		}
	}
	sort.Strings(names)
	wantNames := []string{"etc", "etc/group", "etc/passwd", "home", "home/nonroot", "tmp", "usr", "usr/local", "usr/local/bin", "usr/local/bin/hello"}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("the image holds %v, want exactly %v (no shell, nothing else)", names, wantNames)
	}
	if home := files["home/nonroot"]; home == nil || home.Uid != image.UID {
		t.Errorf("the home folder is not the user's: %+v", home)
	}
	if tmp := files["tmp"]; tmp == nil || tmp.Typeflag != tar.TypeDir || tmp.Mode&0o1777 != 0o1777 {
		t.Errorf("/tmp is not a folder everyone can write to: %+v", tmp)
	}
	if pw := files["etc/passwd"]; pw == nil || !strings.Contains(string(pw.data), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd does not name user 65532")
	}
	bin := files["usr/local/bin/hello"]
	if bin == nil || bin.Mode&0o111 == 0 {
		t.Fatalf("the binary is missing or not executable: %+v", bin)
	}

	path := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(path, bin.data, 0o755); err != nil {
		t.Fatal(err)
	}
	assertStatic(t, path)
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("running the image's binary: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "hello 1.2.3 (revision "+source.Revision+")" {
		t.Errorf("--version printed %q, want the stamped version and revision", got)
	}
}

// What crane push does with either output: both push to a registry
// (go-containerregistry's, in memory) and pull back as the same image:
// from the layout with the very manifest digest; from the tarball, which
// keeps no manifest, with the same config (image ID) and layers.
func TestOutputsPushToARegistry(t *testing.T) {
	img, err := image.Build(t.Context(), source, hello, runtime.GOARCH, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := image.Tag(source.Repository, source.Version)
	out := image.Output{Dir: t.TempDir()}
	r, err := out.Write(img, ref, source.Revision, runtime.Version())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	fromTarball, err := tarball.ImageFromPath(r.Tarball, &ref)
	if err != nil {
		t.Fatal(err)
	}
	for what, img := range map[string]v1.Image{"layout": layoutImage(t, r.Layout, "1.2.3"), "tarball": fromTarball} {
		dst, err := name.NewTag(u.Host + "/sluice/" + what + ":1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(dst, img); err != nil {
			t.Fatalf("pushing the %s: %v", what, err)
		}
		pulled, err := remote.Image(dst)
		if err != nil {
			t.Fatal(err)
		}
		if got := digest(t, pulled); what == "layout" && got.String() != r.Digest {
			t.Errorf("the layout pushed as %s, want %s", got, r.Digest)
		}
		if got, want := configDigest(t, pulled), configDigest(t, img); got != want {
			t.Errorf("the %s pushed with image ID %s, want %s", what, got, want)
		}
		if got, want := layerDigests(t, pulled), layerDigests(t, img); got != want {
			t.Errorf("the %s pushed with layers %s, want %s", what, got, want)
		}
	}
}

// An image built from a clean commit is up to date until the commit, the
// toolchain, the platform or the tag change; a dirty tree never is.
func TestUpToDate(t *testing.T) {
	img, err := image.Build(t.Context(), source, hello, runtime.GOARCH, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := image.Tag(source.Repository, source.Version)
	out := image.Output{Dir: t.TempDir()}
	if _, ok := out.UpToDate(source, ref, "linux/"+runtime.GOARCH, "go1"); ok {
		t.Fatal("up to date before any build")
	}
	if _, err := out.Write(img, ref, source.Revision, "go1"); err != nil {
		t.Fatal(err)
	}
	platform := "linux/" + runtime.GOARCH
	if _, ok := out.UpToDate(source, ref, platform, "go1"); !ok {
		t.Error("not up to date right after the build")
	}
	other := source
	other.Revision = "fedcba"
	dirty := source
	dirty.Dirty = true
	otherRef, _ := image.Tag(source.Repository, "1.2.4")
	for what, stale := range map[string]bool{
		"another commit":    func() bool { _, ok := out.UpToDate(other, ref, platform, "go1"); return ok }(),
		"a dirty work tree": func() bool { _, ok := out.UpToDate(dirty, ref, platform, "go1"); return ok }(),
		"another toolchain": func() bool { _, ok := out.UpToDate(source, ref, platform, "go2"); return ok }(),
		"another platform":  func() bool { _, ok := out.UpToDate(source, ref, "linux/s390x", "go1"); return ok }(),
		"another tag":       func() bool { _, ok := out.UpToDate(source, otherRef, platform, "go1"); return ok }(),
	} {
		if stale {
			t.Errorf("up to date after %s", what)
		}
	}
	if err := os.Remove(out.Tarball("hello")); err != nil {
		t.Fatal(err)
	}
	if _, ok := out.UpToDate(source, ref, platform, "go1"); ok {
		t.Error("up to date with the tarball gone")
	}
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func configDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func layerDigests(t *testing.T, img v1.Image) string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, l := range ls {
		d, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d.String())
	}
	return strings.Join(ds, ",")
}

// layoutImage reads the image named tag from an OCI layout, after
// checking the whole layout.
func layoutImage(t *testing.T, dir, tag string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("reading the OCI layout: %v", err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("the OCI layout is not valid: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.ArtifactType != "" {
			t.Errorf("the layout calls the image an artifact of type %s", d.ArtifactType)
		}
		if d.Annotations[image.LabelRefName] == tag {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("the OCI layout names no image %q: %+v", tag, im.Manifests)
	return nil
}

type file struct {
	*tar.Header
	data []byte
}

// extract reads the image's filesystem.
func extract(t *testing.T, img v1.Image) map[string]*file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]*file{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = &file{h, b}
	}
}

// assertStatic fails unless the ELF binary needs no dynamic loader.
func assertStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked (it has an ELF interpreter)", path)
		}
	}
}
