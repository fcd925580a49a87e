// Package image builds the container image of sluice-controller with the
// Go toolchain and go-containerregistry alone: no Docker, no base image,
// no network beyond the Go module proxy (`make image`).
//
// The image is FROM scratch: one layer with the static binary, an
// /etc/passwd and /etc/group naming the non-root user 65532 the image runs
// as, its home and an empty /tmp. No shell, no package manager, no CA
// bundle: the controller carries the Mozilla roots in its binary
// (golang.org/x/crypto/x509roots/fallback), used where the system has none.
//
// It is reproducible: the same commit gives the same digest. Every
// timestamp is the commit's time (SOURCE_DATE_EPOCH), the layer's tar is
// written in a fixed order with fixed owners and modes and gzipped by the
// standard library, and the binary is built with -trimpath and without VCS
// stamping, its version and revision passed by -ldflags -X instead.
//
// Describe finds the version (the chart's appVersion) and the revision
// (the commit); Build compiles the binary and assembles the image; Write
// saves it as an OCI image layout (`skopeo copy oci:DIR:TAG`, `crane push
// DIR`) and a tarball in `docker save` form (`docker load`, `crane push
// FILE`, `skopeo copy docker-archive:FILE`).
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user the image runs as: distroless' "nonroot", which the chart's
// securityContext (runAsNonRoot) expects.
const (
	UID  = 65532
	User = "65532:65532"
	Home = "/home/nonroot"
)

// BinDir is where the binary is in the image.
const BinDir = "/usr/local/bin"

// The OCI annotation keys the image carries, as config labels and as
// manifest annotations.
const (
	LabelSource      = "org.opencontainers.image.source"
	LabelVersion     = "org.opencontainers.image.version"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelCreated     = "org.opencontainers.image.created"
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"
	// LabelRefName names an image in an OCI layout's index.json (the tag
	// of `skopeo copy oci:DIR:TAG`).
	LabelRefName = "org.opencontainers.image.ref.name"
)

// Metadata is what the image says about itself.
type Metadata struct {
	// Name of the program: the binary is BinDir/Name and the image's
	// entrypoint; the title label.
	Name        string
	Description string
	// Source is the repository's URL (org.opencontainers.image.source).
	Source string
	// Version and Revision (the commit) of the build.
	Version, Revision string
	// Created is every timestamp in the image: the commit's time, so the
	// same commit gives the same digest.
	Created time.Time
	// Platform is the binary's: OS and architecture.
	Platform v1.Platform
}

// Labels are the OCI labels of m.
func (m Metadata) Labels() map[string]string {
	l := map[string]string{
		LabelSource:   m.Source,
		LabelVersion:  m.Version,
		LabelRevision: m.Revision,
		LabelCreated:  m.Created.UTC().Format(time.RFC3339),
		LabelTitle:    m.Name,
	}
	if m.Description != "" {
		l[LabelDescription] = m.Description
	}
	return l
}

// Entrypoint is the binary's path in the image.
func (m Metadata) Entrypoint() string { return path.Join(BinDir, m.Name) }

// Assemble makes the image of a static binary.
func Assemble(binary []byte, m Metadata) (v1.Image, error) {
	if m.Name == "" || m.Version == "" || m.Platform.OS == "" || m.Platform.Architecture == "" {
		return nil, fmt.Errorf("image metadata needs a name, a version and a platform, got %+v", m)
	}
	created := m.Created.UTC().Truncate(time.Second)
	layerBytes, err := rootLayer(binary, m.Name, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: m.Platform.Architecture,
		OS:           m.Platform.OS,
		Variant:      m.Platform.Variant,
		Created:      v1.Time{Time: created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       User,
			Entrypoint: []string{m.Entrypoint()},
			Env:        []string{"HOME=" + Home},
			WorkingDir: "/",
			Labels:     m.Labels(),
		},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		// Only the layer's own methods: tarball's layer describes itself
		// with an empty (not nil) annotations map, which its image's
		// manifest would then hold in memory but not in JSON.
		Layer: struct{ v1.Layer }{layer},
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: fmt.Sprintf("make image: %s %s (CGO_ENABLED=0, -trimpath), user %s, no base image", m.Name, m.Version, User),
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, m.Labels()).(v1.Image), nil
}

// entry is one file or folder of the root layer.
type entry struct {
	name     string
	dir      bool
	mode     int64
	uid      int
	contents []byte
}

// rootLayer is the image's one layer, gzipped: folders before their
// contents, in this fixed order, owned by root but for the user's home.
func rootLayer(binary []byte, name string, created time.Time) ([]byte, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", UID, UID, Home)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)
	entries := []entry{
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/group", mode: 0o644, contents: []byte(group)},
		{name: "etc/passwd", mode: 0o644, contents: []byte(passwd)},
		{name: "home/", dir: true, mode: 0o755},
		{name: "home/nonroot/", dir: true, mode: 0o700, uid: UID},
		{name: "tmp/", dir: true, mode: 0o1777},
		{name: "usr/", dir: true, mode: 0o755},
		{name: "usr/local/", dir: true, mode: 0o755},
		{name: "usr/local/bin/", dir: true, mode: 0o755},
		{name: path.Join(BinDir, name)[1:], mode: 0o755, contents: binary},
	}
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: created,
			Typeflag: tar.TypeReg, Size: int64(len(e.contents)), Format: tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.contents); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
