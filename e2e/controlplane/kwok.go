package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// kwokVersion is used to find kwok's stage definitions when the harness
// runs outside the repository (e2e/tools/kwok/go.mod is the reference).
const kwokVersion = "v0.8.0"

// Annotation that marks the nodes kwok manages.
const (
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	kwokNodeValue      = "fake"
)

// builtinStages are the stage files of the kwok module that simulate
// nodes (initialisation, heartbeat) and pods (ready, job completion,
// deletion), relative to the module's kustomize/stage folder.
var builtinStages = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat/node-heartbeat.yaml",
	"pod/fast/pod-ready.yaml",
	"pod/fast/pod-complete.yaml",
	"pod/fast/pod-delete.yaml",
}

// startKwok writes the stages and runs kwok on the nodes annotated
// kwok.x-k8s.io/node=fake.
func (c *ControlPlane) startKwok(binary, stages string) error {
	cfg := filepath.Join(c.dir, "kwok-stages.yaml")
	if err := os.WriteFile(cfg, []byte(stages), 0o600); err != nil {
		return err
	}
	// KWOK_WORKDIR keeps a user's ~/.kwok/kwok.yaml from being loaded too.
	_, err := c.startWithEnv(binKwok, binary, []string{"KWOK_WORKDIR=" + filepath.Join(c.dir, "kwok")},
		"--kubeconfig="+c.kubecfg,
		"--config="+cfg,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"="+kwokNodeValue,
		"--cidr=10.244.0.1/16",
		"--node-ip=10.240.0.1",
	)
	return err
}

// kwokStages returns the stage configuration for kwok: the built-in stages
// of the kwok module in moduleDir (found when empty), with extra ones added
// (or replacing built-ins of the same name), every document preceded by
// "---" (kwok silently ignores documents concatenated without it).
func kwokStages(ctx context.Context, moduleDir string, extra []string) (string, error) {
	var err error
	if moduleDir == "" {
		if moduleDir, err = findKwokModule(ctx); err != nil {
			return "", err
		}
	}
	type doc struct{ name, yaml string }
	var docs []doc
	for _, rel := range builtinStages {
		data, err := os.ReadFile(filepath.Join(moduleDir, "kustomize", "stage", filepath.FromSlash(rel)))
		if err != nil {
			return "", fmt.Errorf("kwok stage definitions: %w", err)
		}
		name, _, err := parseStage(string(data), false)
		if err != nil {
			return "", fmt.Errorf("kwok stage %s: %w", rel, err)
		}
		docs = append(docs, doc{name, string(data)})
	}
	for i, s := range extra {
		for _, d := range splitYAML(s) {
			name, out, err := parseStage(d, true)
			if err != nil {
				return "", fmt.Errorf("ExtraStages[%d]: %w", i, err)
			}
			docs = slices.DeleteFunc(docs, func(x doc) bool { return name != "" && x.name == name })
			docs = append(docs, doc{name, out})
		}
	}
	var b strings.Builder
	for _, d := range docs {
		b.WriteString("---\n")
		b.WriteString(strings.TrimSpace(d.yaml))
		b.WriteString("\n")
	}
	return b.String(), nil
}

// parseStage checks that doc is a YAML object and returns its name when it
// is a Stage. With defaultWeight, a Stage without spec.weight or
// spec.weightFrom gets weight 1 and is returned re-encoded.
func parseStage(doc string, defaultWeight bool) (string, string, error) {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		return "", "", err
	}
	if obj == nil {
		return "", "", fmt.Errorf("empty document")
	}
	if obj["kind"] != "Stage" {
		return "", doc, nil
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		return "", "", fmt.Errorf("stage without metadata.name")
	}
	spec, _ := obj["spec"].(map[string]any)
	if defaultWeight && spec["selector"] == nil {
		return "", "", fmt.Errorf("stage %s has no spec.selector: kwok would silently ignore it", name)
	}
	if !defaultWeight || spec == nil || spec["weightFrom"] != nil {
		return name, doc, nil
	}
	if w, ok := spec["weight"].(float64); ok && w != 0 {
		return name, doc, nil
	}
	spec["weight"] = 1
	out, err := yaml.Marshal(obj)
	return name, string(out), err
}

var yamlSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitYAML splits a multi-document YAML string, dropping empty documents.
func splitYAML(s string) []string {
	var out []string
	for _, d := range yamlSeparator.Split(s, -1) {
		if strings.TrimSpace(d) != "" {
			out = append(out, d)
		}
	}
	return out
}

// findKwokModule returns the source folder of sigs.k8s.io/kwok in the
// module cache (downloading it if needed): at the version e2e/tools/kwok
// requires when that folder is found next to this source file, else at
// kwokVersion.
func findKwokModule(ctx context.Context) (string, error) {
	args := []string{"mod", "download", "-json"}
	dir := os.TempDir()
	if tools := toolsDir(); tools != "" {
		dir = filepath.Join(tools, "kwok")
		args = append(args, "sigs.k8s.io/kwok")
	} else {
		args = append(args, "sigs.k8s.io/kwok@"+kwokVersion)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find the kwok module (for its stage definitions; set Options.KwokDir to skip): "+
			"go %s in %s: %w: %s", strings.Join(args, " "), dir, err, stderr.String())
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("find the kwok module: %w", err)
	}
	if m.Dir == "" {
		return "", fmt.Errorf("find the kwok module: go mod download: %s", m.Error)
	}
	return m.Dir, nil
}

// toolsDir returns the repository's e2e/tools folder, located from this
// source file, or "" when the sources are not on disk (a -trimpath build
// or a binary copied elsewhere).
func toolsDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	dir := filepath.Join(filepath.Dir(file), "..", "tools")
	if _, err := os.Stat(filepath.Join(dir, "kwok", "go.mod")); err != nil {
		return ""
	}
	return dir
}
