// Package karmada ships Sluice's Karmada resource interpreter
// customizations (config.karmada.io/v1alpha1 ResourceInterpreterCustomization),
// so that a Rollout and the workload it releases can be propagated from a
// Karmada control plane (openkruise/rollouts#330): the health, status
// reflection and aggregation of the Rollout and the AnalysisRun, the
// AnalysisTemplates a Rollout needs, and the retention of the fields Sluice
// sets on a workload while a release holds it (a Deployment's pause and
// strategy, a StatefulSet's, CloneSet's or Advanced StatefulSet's
// partition). The Lua scripts live in Karmada's own layout
// (<group>/<version>/<Kind>/<rule>.lua, one file per customization rule);
// customizations.yaml installs them and `make generate` writes it
// (CustomizationsYAML).
//
// The package also runs the scripts the way Karmada does (emulate.go), so
// that tests check them against objects from real releases.
package karmada

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed rollouts.kruise.io analysis.sluice.dev apps apps.kruise.io
var scripts embed.FS

// CustomizationsFile is the generated manifest, relative to this folder.
const CustomizationsFile = "customizations.yaml"

// Customization is a ResourceInterpreterCustomization, with the fields of
// Karmada's type (pkg/apis/config/v1alpha1, karmada-io/karmada at
// f8fdd02d) that Sluice's customizations use.
type Customization struct {
	APIVersion string `json:"apiVersion" yaml:"apiVersion"`
	Kind       string `json:"kind" yaml:"kind"`
	Metadata   struct {
		Name string `json:"name" yaml:"name"`
	} `json:"metadata" yaml:"metadata"`
	Spec struct {
		Target struct {
			APIVersion string `json:"apiVersion" yaml:"apiVersion"`
			Kind       string `json:"kind" yaml:"kind"`
		} `json:"target" yaml:"target"`
		Customizations Rules `json:"customizations" yaml:"customizations"`
	} `json:"spec" yaml:"spec"`
}

// Rules are a customization's Lua scripts by operation (Karmada's
// CustomizationRules); a script file is named after its field.
type Rules struct {
	Retention                *Rule `json:"retention,omitempty" yaml:"retention,omitempty"`
	ReplicaResource          *Rule `json:"replicaResource,omitempty" yaml:"replicaResource,omitempty"`
	ReplicaRevision          *Rule `json:"replicaRevision,omitempty" yaml:"replicaRevision,omitempty"`
	StatusReflection         *Rule `json:"statusReflection,omitempty" yaml:"statusReflection,omitempty"`
	StatusAggregation        *Rule `json:"statusAggregation,omitempty" yaml:"statusAggregation,omitempty"`
	HealthInterpretation     *Rule `json:"healthInterpretation,omitempty" yaml:"healthInterpretation,omitempty"`
	DependencyInterpretation *Rule `json:"dependencyInterpretation,omitempty" yaml:"dependencyInterpretation,omitempty"`
}

// Rule is one operation's script.
type Rule struct {
	LuaScript string `json:"luaScript" yaml:"luaScript"`
}

func (r *Rules) set(name, script string) error {
	rule := &Rule{LuaScript: script}
	switch name {
	case "retention":
		r.Retention = rule
	case "replicaResource":
		r.ReplicaResource = rule
	case "replicaRevision":
		r.ReplicaRevision = rule
	case "statusReflection":
		r.StatusReflection = rule
	case "statusAggregation":
		r.StatusAggregation = rule
	case "healthInterpretation":
		r.HealthInterpretation = rule
	case "dependencyInterpretation":
		r.DependencyInterpretation = rule
	default:
		return fmt.Errorf("%s is not a customization rule", name)
	}
	return nil
}

// Customizations builds the customizations from the scripts, one per
// target kind, in path order.
func Customizations() ([]Customization, error) {
	var out []Customization
	byTarget := map[string]*Customization{}
	err := fs.WalkDir(scripts, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if path.Ext(p) != ".lua" {
			return fmt.Errorf("%s: only Lua scripts belong here", p)
		}
		dir, file := path.Split(p)
		parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
		if len(parts) != 3 {
			return fmt.Errorf("%s: want <group>/<version>/<Kind>/<rule>.lua", p)
		}
		group, version, kind := parts[0], parts[1], parts[2]
		apiVersion := group + "/" + version
		if group == "apps" && version == "v1" {
			apiVersion = "apps/v1"
		}
		c := byTarget[apiVersion+"/"+kind]
		if c == nil {
			c = &Customization{APIVersion: "config.karmada.io/v1alpha1", Kind: "ResourceInterpreterCustomization"}
			c.Metadata.Name = nameFor(group, kind)
			c.Spec.Target.APIVersion, c.Spec.Target.Kind = apiVersion, kind
			byTarget[apiVersion+"/"+kind] = c
		}
		raw, err := scripts.ReadFile(p)
		if err != nil {
			return err
		}
		return c.Spec.Customizations.set(strings.TrimSuffix(file, ".lua"), string(raw))
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(byTarget))
	for k := range byTarget {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, *byTarget[k])
	}
	return out, nil
}

// nameFor names a kind's customization: sluice-<kind>, with kruise- for
// OpenKruise's kinds (its StatefulSet shares the name of apps/v1's).
func nameFor(group, kind string) string {
	name := "sluice-" + strings.ToLower(kind)
	if group == "apps.kruise.io" {
		name = "sluice-kruise-" + strings.ToLower(kind)
	}
	return name
}

// CustomizationsYAML is customizations.yaml: every customization, for
// `kubectl apply` against the Karmada API server.
func CustomizationsYAML() ([]byte, error) {
	cs, err := Customizations()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# Sluice's Karmada resource interpreter customizations (docs/karmada.md):\n" +
		"# kubectl --kubeconfig karmada-apiserver.config apply -f customizations.yaml\n" +
		"# Generated by `make generate` from the Lua scripts in deploy/karmada/: edit those.\n")
	for _, c := range cs {
		b.WriteString("---\n")
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(c); err != nil {
			return nil, err
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}
