//go:build e2e

package chaos_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/devenv/openkruise"
	"github.com/sluicehq/sluice/e2e/framework"
)

// laneSpec is one workload released over and over in its own namespace.
type laneSpec struct {
	name     string
	kind     schema.GroupVersionKind
	style    string // partition, canary, blue-green
	replicas int64
	traffic  bool // the guide's nginx Ingress
	analysis bool // error-rate analysis through the Prometheus fault proxy
	// pauses says what the plan waits for between steps: "none" (zero
	// pauses), "short" (1s) or "approval" (step 1 waits for the other
	// client's approval).
	pauses string
	// rollout is the Rollout's spec.strategy as YAML (indented by 2).
	strategy string
	// newVersionMidRelease: this plan takes a new version mid-release (a
	// blue-green release refuses one until the stable template is back).
	newVersionMidRelease bool
}

var (
	deploymentKind  = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	statefulSetKind = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}
)

// The guide's nginx Ingress routing (docs/examples/guide/example1-ingress.yaml).
const ingressRouting = `
    trafficRoutings:
    - service: echoserver
      gracePeriodSeconds: 1
      ingress: {name: echoserver}`

// analysisRef is the error-rate analysis after a step.
const analysisRef = `
        analysis: {templates: [{templateName: error-rate}]}`

// allLanes are the lanes of the long run; the short run takes the first
// three. Together: Deployments in the three styles, a StatefulSet, a
// CloneSet and an Advanced StatefulSet; traffic and analysis on some; zero
// pauses, short pauses and a manual approval.
func allLanes() []laneSpec {
	return []laneSpec{
		{
			// The guide's Example 1 with analysis after every step, as
			// docs/examples has it (only the template's Prometheus differs).
			name: "deployment-partition", kind: deploymentKind, style: "partition", replicas: 5,
			traffic: true, analysis: true, pauses: "none", newVersionMidRelease: true,
			strategy: "example1-analysis-rollout.yaml",
		},
		{
			name: "cloneset", kind: openkruise.CloneSetKind, style: "partition", replicas: 5,
			traffic: true, analysis: true, pauses: "none", newVersionMidRelease: true,
			strategy: `
    canary:
      steps:
      - matches: [{headers: [{type: Exact, name: User-Agent, value: Andriod}]}]
        replicas: 1
        pause: {duration: 0}` + analysisRef + `
      - {traffic: 50%, replicas: 50%, pause: {duration: 0}}
      - traffic: 100%
        replicas: 100%` + analysisRef + ingressRouting,
		},
		{
			name: "deployment-canary", kind: deploymentKind, style: "canary", replicas: 5,
			traffic: true, pauses: "short", newVersionMidRelease: true,
			strategy: `
    canary:
      enableExtraWorkloadForCanary: true
      steps:
      - {replicas: 1, traffic: 20%, pause: {duration: 1}}
      - {replicas: 50%, traffic: 50%, pause: {duration: 1}}
      - {replicas: 100%, traffic: 100%}` + ingressRouting,
		},
		{
			name: "deployment-blue-green", kind: deploymentKind, style: "blue-green", replicas: 4,
			traffic: true, pauses: "none",
			strategy: `
    blueGreen:
      steps:
      - {replicas: 50%, traffic: 0%, pause: {duration: 0}}
      - {replicas: 100%, traffic: 0%, pause: {duration: 0}}
      - {replicas: 100%, traffic: 100%}` + ingressRouting,
		},
		{
			name: "deployment-approval", kind: deploymentKind, style: "partition", replicas: 10,
			pauses: "approval", newVersionMidRelease: true,
			strategy: `
    canary:
      steps:
      - {replicas: 2, pause: {}}
      - {replicas: 50%, pause: {duration: 1}}
      - {replicas: 100%}`,
		},
		{
			name: "statefulset", kind: statefulSetKind, style: "partition", replicas: 4,
			analysis: true, pauses: "none", newVersionMidRelease: true,
			strategy: `
    canary:
      steps:
      - replicas: 1
        pause: {duration: 0}` + analysisRef + `
      - {replicas: 50%, pause: {duration: 0}}
      - replicas: 100%` + analysisRef,
		},
		{
			name: "advanced-statefulset", kind: openkruise.AdvancedStatefulSetKind, style: "partition", replicas: 4,
			pauses: "short", newVersionMidRelease: true,
			strategy: `
    canary:
      steps:
      - {replicas: 1, pause: {duration: 1}}
      - {replicas: 50%, pause: {duration: 1}}
      - {replicas: 100%}`,
		},
	}
}

// kindName says what a lane releases, for the report.
func (s laneSpec) kindName() string {
	var with []string
	if s.traffic {
		with = append(with, "nginx traffic")
	}
	if s.analysis {
		with = append(with, "analysis")
	}
	with = append(with, map[string]string{"none": "zero pauses", "short": "1s pauses", "approval": "an approval"}[s.pauses])
	kind := s.kind.Kind
	if s.kind.Group == openkruise.CloneSetKind.Group && kind == "StatefulSet" {
		kind = "Advanced StatefulSet"
	}
	if s.kind == deploymentKind {
		kind += " (" + s.style + ")"
	}
	return kind + ", " + strings.Join(with, ", ")
}

// image is the n-th version; the simulator serves every one as healthy.
func image(n int) string {
	if n == 0 {
		return "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	}
	return fmt.Sprintf("openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.11.%d", n)
}

func guideFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(framework.RepoRoot(), "docs", "examples", "guide", name))
}

// workloadManifest is the lane's workload as its Git repository holds it:
// the guide's echoserver Deployment, or the same template as the lane's
// kind. The partitioned kinds carry their partition, 0, as a GitOps
// manifest does (issue 10's defect 2 re-applies it mid-release).
func (s laneSpec) workloadManifest(img string) (*unstructured.Unstructured, error) {
	raw, err := guideFile("echoserver.yaml")
	if err != nil {
		return nil, err
	}
	objs, err := manifest.Objects(raw)
	if err != nil {
		return nil, err
	}
	u := objs[0]
	if u.GetKind() != "Deployment" {
		return nil, fmt.Errorf("echoserver.yaml: first object is a %s", u.GetKind())
	}
	u.SetGroupVersionKind(s.kind)
	spec := u.Object["spec"].(map[string]any)
	spec["replicas"] = s.replicas
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	containers[0].(map[string]any)["image"] = img
	if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		return nil, err
	}
	switch s.kind {
	case statefulSetKind, openkruise.AdvancedStatefulSetKind:
		spec["serviceName"] = "echoserver"
		spec["updateStrategy"] = map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"partition": int64(0)}}
	case openkruise.CloneSetKind:
		spec["updateStrategy"] = map[string]any{"partition": int64(0)}
	}
	return u, nil
}

// rolloutManifest is the lane's Rollout.
func (s laneSpec) rolloutManifest() ([]byte, error) {
	if strings.HasSuffix(s.strategy, ".yaml") {
		return os.ReadFile(filepath.Join(framework.RepoRoot(), "docs", "examples", s.strategy))
	}
	return []byte(fmt.Sprintf(`apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: rollouts-demo
spec:
  workloadRef: {apiVersion: %s, kind: %s, name: echoserver}
  strategy:%s
`, s.kind.GroupVersion(), s.kind.Kind, s.strategy)), nil
}

// rolloutName is the name of every lane's Rollout (the guide's).
const rolloutName = "rollouts-demo"

// analysisTemplate is docs/examples' error-rate metric, measured twice a
// second apart after 3s, against the Prometheus fault proxy with a 2s
// timeout (the proxy's slow answers take longer).
func analysisTemplate(address string) string {
	return fmt.Sprintf(`apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
  - name: error-rate
    initialDelay: 3s
    interval: 1s
    count: 2
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: %s
        timeout: %s
        query: |
          sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}",code=~"5.."}[10s]))
            / sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}"}[10s]))
`, address, queryTimeout)
}
