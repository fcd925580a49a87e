package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
)

// Names of the binaries the control plane runs, as built by devenv/tools/build.sh.
const (
	binEtcd              = "etcd"
	binAPIServer         = "kube-apiserver"
	binControllerManager = "kube-controller-manager"
	binScheduler         = "kube-scheduler"
	binKwok              = "kwok"
	binPrometheus        = "prometheus"
)

// BinDir returns the folder the control plane takes its binaries from when no
// folder is given explicitly: $SLUICE_BIN_DIR, else $SLUICE_CACHE/bin, else
// ~/.cache/sluice/bin (where `make tools` builds them).
func BinDir() string {
	if d := os.Getenv("SLUICE_BIN_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("SLUICE_CACHE"); d != "" {
		return filepath.Join(d, "bin")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "sluice", "bin")
	}
	return filepath.Join(".cache", "sluice", "bin")
}

// findBinaries returns the absolute path of every named binary in dir (or
// in BinDir() when dir is empty), or an error naming the missing ones and
// how to build them.
func findBinaries(dir string, names ...string) (map[string]string, error) {
	if dir == "" {
		dir = BinDir()
	}
	paths := make(map[string]string, len(names))
	var missing []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, n)
			continue
		}
		paths[n] = p
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("control plane binaries %v not found in %s: run `make tools` "+
			"(devenv/tools/build.sh) to build them, or point SLUICE_BIN_DIR at a folder that has them", missing, dir)
	}
	return paths, nil
}
