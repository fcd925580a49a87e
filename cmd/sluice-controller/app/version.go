package app

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// The release this binary is, stamped at link time by `make image`
// (deploy/image):
//
//	-ldflags "-X github.com/sluicehq/sluice/cmd/sluice-controller/app.version=0.1.0
//	          -X github.com/sluicehq/sluice/cmd/sluice-controller/app.revision=<commit>"
//
// They are written only by the linker; a plain `go build` leaves them
// empty and Version falls back to what the Go toolchain recorded.
var (
	version  string
	revision string
)

// VersionVariable and RevisionVariable are the -X names of the stamped
// version and revision.
const (
	VersionVariable  = "github.com/sluicehq/sluice/cmd/sluice-controller/app.version"
	RevisionVariable = "github.com/sluicehq/sluice/cmd/sluice-controller/app.revision"
)

// Version is what `sluice-controller --version` prints, e.g.
// "sluice-controller 0.1.0 (revision 3419ca4..., go1.26.8 linux/amd64)".
func Version() string {
	info, _ := debug.ReadBuildInfo()
	return versionLine(version, revision, info, runtime.GOOS+"/"+runtime.GOARCH)
}

// versionLine words the version: the stamped one, else the module version
// and VCS revision the toolchain recorded (go build in a checkout records
// vcs.revision and vcs.modified), else "devel".
func versionLine(version, revision string, info *debug.BuildInfo, platform string) string {
	goVersion := runtime.Version()
	if info != nil {
		goVersion = info.GoVersion
		if version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			version = info.Main.Version
		}
		if revision == "" {
			var modified bool
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					revision = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if revision != "" && modified {
				revision += "-dirty"
			}
		}
	}
	if version == "" {
		version = "devel"
	}
	if revision == "" {
		revision = "unknown"
	}
	return fmt.Sprintf("sluice-controller %s (revision %s, %s %s)", version, revision, goVersion, platform)
}
