package app

import (
	"runtime/debug"
	"testing"
)

func TestVersionLine(t *testing.T) {
	built := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"},
	}}
	cases := []struct {
		name              string
		version, revision string
		info              *debug.BuildInfo
		want              string
	}{
		{"stamped by make image", "0.1.0", "3419ca4", built,
			"sluice-controller 0.1.0 (revision 3419ca4, go1.26.8 linux/amd64)"},
		{"go build in a modified checkout", "", "", built,
			"sluice-controller devel (revision abc123-dirty, go1.26.8 linux/amd64)"},
		{"go install of a module version", "", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.0"}},
			"sluice-controller v0.1.0 (revision unknown, go1.26.8 linux/amd64)"},
	}
	for _, c := range cases {
		if got := versionLine(c.version, c.revision, c.info, "linux/amd64"); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}
