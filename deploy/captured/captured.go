// Package captured holds Rollouts, AnalysisRuns and workloads captured
// from real releases on the local control plane, in every state a release
// goes through, and what each state must mean to Argo CD and Karmada. The
// e2e test e2e/gitops makes those releases, checks the shipped
// customizations on the live objects, and with SLUICE_UPDATE_CAPTURES=1
// writes the objects here; the unit tests of deploy/argocd and
// deploy/karmada run the customizations on these files, so they stay true
// to what sluice-controller writes.
package captured

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"io"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

//go:embed states
var files embed.FS

// Dir is the folder of the capture files, relative to this package.
const Dir = "states"

// Namespace replaces the random namespace of the e2e test in a capture.
const Namespace = "demo"

// Kind of object a state is captured on.
const (
	Rollout     = "Rollout"
	AnalysisRun = "AnalysisRun"
	Workload    = "Workload"
)

// State is one captured state and what it means.
type State struct {
	// Name is the capture's file name, without .yaml.
	Name string
	// Kind is Rollout, AnalysisRun or Workload.
	Kind string
	// What the state is, in words.
	What string
	// Health is the Argo CD health of the state (Rollouts, AnalysisRuns).
	Health string
	// Actions are the Argo CD actions enabled in it (Rollouts).
	Actions []string
	// Healthy is the Karmada health of the state.
	Healthy bool
	// Held says whether Sluice holds the workload in a release (Workloads):
	// the capture then also has the manifest the hub or Git asks for
	// (Desired), to check the Karmada retention against.
	Held bool
}

const (
	argoHealthy     = "Healthy"
	argoProgressing = "Progressing"
	argoSuspended   = "Suspended"
	argoDegraded    = "Degraded"
)

var (
	none     []string
	moving   = []string{"abort", "pause", "promote"}
	waiting  = []string{"abort", "approve", "pause", "promote"}
	analysis = []string{"abort", "approve", "pause", "promote", "retry"}
	aborted  = []string{"retry"}
)

// States are every captured state; the e2e test captures each of them.
var States = []State{
	{"rollout-no-release", Rollout, "created, no release yet", argoHealthy, none, true, false},
	{"rollout-waiting-for-pods", Rollout, "a batch's pods coming up", argoProgressing, moving, true, false},
	{"rollout-traffic-grace-period", Rollout, "waiting out gracePeriodSeconds after a routing change", argoProgressing, moving, true, false},
	{"rollout-waiting-for-approval", Rollout, "a step with pause: {}", argoSuspended, waiting, true, false},
	{"rollout-waiting-for-approval-v1alpha1", Rollout, "the same, read as v1alpha1", argoSuspended, waiting, true, false},
	{"rollout-paused-by-spec", Rollout, "spec.strategy.paused", argoSuspended, []string{"abort", "promote", "resume"}, true, false},
	{"rollout-timed-pause", Rollout, "a step with pause: {duration: 60}", argoProgressing, waiting, true, false},
	{"rollout-promoted", Rollout, "promoted past its steps by a person", argoHealthy, none, true, false},
	{"rollout-disabled", Rollout, "spec.disabled", argoHealthy, none, true, false},
	{"rollout-analysis-running", Rollout, "a step's analysis measuring", argoProgressing, moving, true, false},
	{"rollout-finalising", Rollout, "the last step passed, the workload given back", argoProgressing, none, true, false},
	{"rollout-completed", Rollout, "every step and analysis passed", argoHealthy, none, true, false},
	{"rollout-aborted", Rollout, "aborted by a person, held at the stable revision", argoDegraded, aborted, false, false},
	{"rollout-cancelled", Rollout, "the stable template re-applied mid-release", argoHealthy, none, true, false},
	{"rollout-rolled-back", Rollout, "rolled back by a failed analysis, held at the stable revision", argoDegraded, aborted, false, false},
	{"rollout-rolled-back-then-reverted", Rollout, "the stable template re-applied after a rollback", argoHealthy, none, true, false},
	{"rollout-analysis-error", Rollout, "held: Prometheus could not be queried (onError: Pause)", argoSuspended, analysis, true, false},
	{"rollout-analysis-inconclusive", Rollout, "held: an inconclusive verdict (onInconclusive: Pause)", argoSuspended, analysis, true, false},
	{"rollout-analysis-failed-paused", Rollout, "held: a failed verdict with onFailed: Pause", argoSuspended, analysis, true, false},
	{"rollout-analysis-not-started", Rollout, "held: the step's AnalysisTemplate is gone", argoSuspended, moving, true, false},
	{"rollout-progress-deadline-exceeded", Rollout, "a batch whose pods never get ready", argoDegraded, moving, false, false},
	{"rollout-bluegreen-waiting-for-approval", Rollout, "a blue-green step with pause: {}", argoSuspended, waiting, true, false},
	{"rollout-new-revision-refused", Rollout, "a new version pushed mid blue-green release", argoSuspended, moving, true, false},

	{"analysisrun-running", AnalysisRun, "measuring", argoProgressing, nil, true, false},
	{"analysisrun-successful", AnalysisRun, "passed", argoHealthy, nil, true, false},
	{"analysisrun-failed", AnalysisRun, "failed: 20% errors", argoDegraded, nil, false, false},
	{"analysisrun-error", AnalysisRun, "Prometheus unreachable", argoDegraded, nil, false, false},
	{"analysisrun-inconclusive", AnalysisRun, "neither condition met", argoSuspended, nil, false, false},

	{"deployment-at-rest", Workload, "a Deployment no release holds", "", nil, true, false},
	{"deployment-in-release", Workload, "a partition-style release at step 1", "", nil, true, true},
	{"deployment-bluegreen-in-release", Workload, "a blue-green release at step 1", "", nil, true, true},
	{"statefulset-in-release", Workload, "a StatefulSet release at step 1", "", nil, true, true},
	{"cloneset-in-release", Workload, "an OpenKruise CloneSet release at step 1", "", nil, true, true},
	{"advanced-statefulset-in-release", Workload, "an OpenKruise Advanced StatefulSet release at step 1", "", nil, true, true},
}

// Lookup returns the state named name.
func Lookup(name string) (State, bool) {
	for _, s := range States {
		if s.Name == name {
			return s, true
		}
	}
	return State{}, false
}

// Object reads a state's captured object.
func Object(name string) (*unstructured.Unstructured, error) {
	docs, err := read(name)
	if err != nil {
		return nil, err
	}
	return docs[0], nil
}

// Desired reads the manifest a held workload's capture was released from
// (the hub's or Git's object), or nil.
func Desired(name string) (*unstructured.Unstructured, error) {
	docs, err := read(name)
	if err != nil || len(docs) < 2 {
		return nil, err
	}
	return docs[1], nil
}

// Files lists the captures present, without .yaml.
func Files() []string {
	entries, _ := files.ReadDir(Dir)
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, name)
		}
	}
	return out
}

func read(name string) ([]*unstructured.Unstructured, error) {
	raw, err := files.ReadFile(path.Join(Dir, path.Clean(name)+".yaml"))
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	for {
		doc, err := docs.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		// Through JSON, so that numbers are int64 as in objects read
		// from the API server.
		raw, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no object", name)
	}
	return out, nil
}

// Encode writes objects as a capture file: a header saying what the state
// is, then the objects, with the e2e test's namespace replaced by
// Namespace and server-side bookkeeping (managed fields) left out.
func Encode(s State, namespace string, objs ...*unstructured.Unstructured) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s: %s.\n# Captured by e2e/gitops from a real release (SLUICE_UPDATE_CAPTURES=1); do not edit.\n", s.Name, s.What)
	for i, o := range objs {
		o = o.DeepCopy()
		o.SetManagedFields(nil)
		raw, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(bytes.ReplaceAll(raw, []byte(namespace), []byte(Namespace)))
	}
	return b.Bytes(), nil
}
