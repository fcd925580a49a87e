package custom

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"strings"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

// Data is what a script reads and returns, and what the snapshot
// annotation holds: the parts of an object a provider may change.
type Data struct {
	Spec        any               `json:"spec,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// input is Kruise's obj table for custom network scripts.
type input struct {
	Data                  Data                        `json:"data"`
	CanaryWeight          int32                       `json:"canaryWeight"`
	StableWeight          int32                       `json:"stableWeight"`
	Matches               []v1beta1.HttpRouteMatch    `json:"matches"`
	CanaryService         string                      `json:"canaryService"`
	StableService         string                      `json:"stableService"`
	RequestHeaderModifier *gatewayv1.HTTPHeaderFilter `json:"requestHeaderModifier,omitempty"`
}

// ScriptKey is the configuration key of the script of a kind, as Kruise
// names it: lua.traffic.routing.<Kind>.<group>.
func ScriptKey(apiVersion, kind string) string {
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		group = "" // core group: "v1"
	}
	return "lua.traffic.routing." + kind + "." + group
}

//go:embed scripts/*.lua
var builtinFS embed.FS

// Builtin holds the built-in scripts by configuration key.
var Builtin = func() script.Map {
	m := script.Map{}
	entries, err := builtinFS.ReadDir("scripts")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b, err := builtinFS.ReadFile("scripts/" + e.Name())
		if err != nil {
			panic(err)
		}
		m["lua.traffic.routing."+strings.TrimSuffix(e.Name(), ".lua")] = string(b)
	}
	return m
}()

// Render runs a script on the original object data for a step. With no
// weight canaryWeight is -1 and stableWeight 100.
func Render(ctx context.Context, name, source string, original Data, r route.Route, stable, canary string) (Data, error) {
	in := input{
		Data:                  original,
		CanaryWeight:          r.CanaryWeight(),
		StableWeight:          100,
		Matches:               r.Matches,
		CanaryService:         canary,
		StableService:         stable,
		RequestHeaderModifier: r.RequestHeaderModifier,
	}
	if r.Weight != nil {
		in.StableWeight = 100 - *r.Weight
	}
	out, err := script.Run(ctx, name, source, in)
	if err != nil {
		return Data{}, err
	}
	m, ok := out.(map[string]any)
	if !ok || m["spec"] == nil {
		return Data{}, fmt.Errorf("lua script %s must return a table {spec, labels, annotations} with a spec", name)
	}
	// spec is used as the script built it (integral numbers are int64, as
	// in objects read from the API server); labels and annotations must be
	// string maps.
	d := Data{Spec: m["spec"]}
	for field, dst := range map[string]*map[string]string{"labels": &d.Labels, "annotations": &d.Annotations} {
		b, err := json.Marshal(m[field])
		if err != nil {
			return Data{}, err
		}
		if err := json.Unmarshal(b, dst); err != nil {
			return Data{}, fmt.Errorf("lua script %s returned %s that are not strings: %v", name, field, err)
		}
	}
	return d, nil
}
