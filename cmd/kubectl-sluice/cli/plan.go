package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/analysis/prometheus"
	"github.com/sluicehq/sluice/analysis/run"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	rolloutsv1alpha1 "github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic"
	"github.com/sluicehq/sluice/traffic/preview"
	"github.com/sluicehq/sluice/traffic/script"
	"github.com/sluicehq/sluice/workload"
)

// planOptions are plan's flags.
type planOptions struct {
	file              string
	images            []string
	dryRun            bool
	prometheusAddress string
	serviceProxy      bool
	scriptsNamespace  string
	exitCode          bool
}

func newPlanCmd(o *options) *cobra.Command {
	po := planOptions{}
	c := &cobra.Command{
		Use:   "plan NAME",
		Short: "Preflight: what the next release does, step by step, and whether its analysis would pass today",
		Long: `plan shows what a release of the Rollout will do, for the workload's current size,
before anything is released (or, during a release, for the one in progress):

  - each step's new pods and traffic (weight, request matches), pause and analysis;
  - the routing objects each step creates, changes or deletes (stable and canary
    Service, canary Ingress, HTTPRoute rules, custom objects), worked out by Sluice's
    own traffic code on a copy of them: nothing in the cluster changes;
  - every analysis metric rendered with its real args, run once now against
    Prometheus for the stable revision: its value and whether it would pass.

It warns on what would stop the release: a step the routing cannot express, a
query without data, a series selector that selects nothing (and which of its label
matchers is to blame), a condition that fails today, a template or arg missing.

With -f FILE (--dry-run) it plans the change in FILE instead: the workload with a
new pod template (or a new size), the Rollout with new steps, or both. With
--image CONTAINER=IMAGE it plans the workload as it is with that image (as kubectl
set image would change it). Either is sent to the API server as a server-side dry
run (defaults and admission apply, nothing is stored), so the plan shows the
revision the new template will have and the reasons admission would refuse it.

Prometheus is reached at each metric's provider.prometheus.address, or, for
metrics that name none, at --prometheus-address, else at the manager's own
(--prometheus-address and credentials read from its Deployment in
--sluice-namespace). An address whose host is a Service in the cluster (NAME.NAMESPACE,
NAME.NAMESPACE.svc, NAME.NAMESPACE.svc.cluster.local) is reached through the API
server's service proxy with your kubeconfig's credentials (RBAC: get on
services/proxy), so no port-forward is needed; --service-proxy=false reaches it
directly.

With --exit-code it exits 7 when it printed warnings, for a pipeline that gates
a change on its preflight.`,
		Example: `  kubectl sluice plan rollouts-demo --prometheus-address http://prometheus-operated.monitoring:9090
  kubectl sluice plan rollouts-demo --dry-run -f echoserver-v2.yaml
  kubectl sluice plan rollouts-demo --image echoserver=cilium/echoserver:1.10.3
  kubectl sluice plan rollouts-demo -f rollout-with-new-steps.yaml`,
		Args:              oneName,
		ValidArgsFunction: completeRollouts(o),
		RunE: func(c *cobra.Command, args []string) error {
			switch {
			case po.dryRun && po.file == "" && len(po.images) == 0:
				return withCode(ExitUsage, "--dry-run needs -f FILE or --image: the change to plan")
			case po.file != "" && len(po.images) > 0:
				return withCode(ExitUsage, "give -f or --image, not both: put the image in the file")
			}
			if err := checkImages(po.images); err != nil {
				return err
			}
			s, err := o.connect()
			if err != nil {
				return err
			}
			v, err := gatherPlan(c.Context(), s, po, args[0], o.now())
			if err != nil {
				return err
			}
			if _, err := io.WriteString(o.streams.Out, renderPlan(v)); err != nil {
				return err
			}
			if n := len(planWarnings(v)); po.exitCode && n > 0 {
				return withCode(ExitPlanWarnings, "the plan has %d warning(s)", n)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&po.file, "filename", "f", "", "plan the change in this file (YAML or JSON; - for stdin): the workload and/or the Rollout as they would be applied")
	c.Flags().StringArrayVar(&po.images, "image", nil, "plan the workload with this image: CONTAINER=IMAGE (repeatable; *=IMAGE for every container; IMAGE alone when the pod has one container)")
	c.Flags().BoolVar(&po.dryRun, "dry-run", false, "say that -f or --image is a dry run (plan never changes anything; either alone does the same)")
	c.Flags().StringVar(&po.prometheusAddress, "prometheus-address", "", "the Prometheus of metrics that name no provider.prometheus.address (default: the manager's, read from its Deployment)")
	c.Flags().BoolVar(&po.serviceProxy, "service-proxy", true, "reach Prometheus addresses that are cluster Services through the API server's service proxy")
	c.Flags().BoolVar(&po.exitCode, "exit-code", false, "exit 7 when the plan has warnings (for a pipeline that gates on it)")
	c.Flags().StringVar(&po.scriptsNamespace, "sluice-namespace", "sluice-system", "the manager's namespace: its Deployment's Prometheus flags, and the ConfigMaps of the Lua routing scripts")
	return c
}

// placeholderRevision stands for the revision of a template not known yet.
const placeholderRevision = "<new>"

// gatherPlan reads the Rollout, its workload, the routing objects and
// templates, previews the routing and measures every metric.
func gatherPlan(ctx context.Context, s *session, po planOptions, name string, now time.Time) (planView, error) {
	ro, err := s.getRollout(ctx, name)
	if err != nil {
		return planView{}, err
	}
	v := planView{rollout: ro, replicas: -1, inProgress: ro.Status.InProgress()}
	if p := ro.Status.Progress(); v.inProgress && p != nil {
		v.stable, v.next, v.currentStep = p.StableRevision, p.PodTemplateHash, p.CurrentStepIndex
	}

	info, wl := observeWorkload(ctx, s, ro)
	revisionLabel := traffic.PodTemplateHashLabel
	if info != nil {
		v.replicas, revisionLabel = info.Replicas, info.RevisionLabel
		if v.stable == "" {
			v.stable = info.StableRevision
		}
		if v.stable == "" {
			v.stable = info.UpdateRevision
		}
	} else {
		// The adapter could not observe it (a kind without one here, or
		// not all of it readable): its size, if the object itself is.
		v.replicas = s.workloadReplicas(ctx, ro)
		if ro.Spec.WorkloadRef.Kind == "StatefulSet" {
			revisionLabel = traffic.ControllerRevisionHashLabel
		}
	}
	if v.stable == "" && ro.Status.Progress() != nil {
		v.stable = ro.Status.Progress().StableRevision
	}

	if po.file != "" || len(po.images) > 0 {
		source, objs, err := changedObjects(po, ro, wl)
		if err != nil {
			return v, err
		}
		d, newRollout, err := dryRun(ctx, s, source, objs, ro, wl)
		if err != nil {
			return v, err
		}
		v.dryRun = d
		if newRollout != nil {
			v.rollout, ro = newRollout, newRollout
		}
		if d.replicas >= 0 {
			v.replicas = d.replicas
		}
		if d.templateChanged {
			v.next, v.inProgress, v.currentStep = d.revision, false, 0
		}
	}

	scripts := &readableScripts{source: script.ConfigMaps{Reader: s.c, Namespace: po.scriptsNamespace,
		Names: []string{script.DefaultConfigMap, script.KruiseConfigMap}}}
	next := v.next
	if next == "" {
		next = placeholderRevision
	}
	if v.replicas >= 0 {
		rp, routed, err := preview.Routing(ctx, s.c, s.c.Scheme(), preview.Release{
			Rollout: ro, Replicas: v.replicas, RevisionLabel: revisionLabel, Stable: v.stable, New: next, Scripts: scripts,
		})
		switch {
		case err != nil:
			v.routingErr = err
		case routed:
			v.routing = &rp
		}
	}
	v.scriptsNote = scripts.note

	prom := &prometheus.Provider{DefaultAddress: po.prometheusAddress, Secrets: s.c}
	v.prometheus, v.prometheusFrom = po.prometheusAddress, "--prometheus-address"
	if po.prometheusAddress == "" {
		if mp, ok := findManagerPrometheus(ctx, s.c, po.scriptsNamespace); ok {
			prom.DefaultAddress, v.prometheus, v.prometheusFrom = mp.address, mp.address, mp.from
			prom.DefaultAuthentication, prom.DefaultAuthNamespace = mp.auth, po.scriptsNamespace
		}
	}
	viaProxy := po.serviceProxy && s.cfg != nil
	if viaProxy {
		prom.Via = serviceProxy(s.cfg)
	}
	v.analyses = gatherAnalyses(ctx, s.c, prom, proxiesCredentials(viaProxy, prom.DefaultAuthentication != nil), ro, v.stable, now)
	return v, nil
}

// observeWorkload reads the workload as the release engine does (its
// adapter's Observe, read only), and as an object; nil what cannot be read.
func observeWorkload(ctx context.Context, s *session, ro *v1beta1.Rollout) (*workload.Info, *unstructured.Unstructured) {
	var info *workload.Info
	if a, err := workload.For(s.c, s.c, ro, workload.Options{}); err == nil {
		info, _ = a.Observe(ctx)
	}
	ref := ro.Spec.WorkloadRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return info, nil
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gv.WithKind(ref.Kind))
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ref.Name}, u); err != nil {
		return info, nil
	}
	return info, u
}

// dryRunView is what -f changes.
type dryRunView struct {
	// source is what holds the change: -f's file, or --image's flags.
	source string
	// workload is true when the change holds the Rollout's workload.
	workload        bool
	templateChanged bool
	// revision is the new template's (Deployments), "" when not known.
	revision string
	// replicas is the file's size, -1 when it holds no workload.
	replicas int32
	// rollout is true when the file holds the Rollout.
	rollout bool
	// refused are what the API server's dry run refused, by object.
	refused []string
	// ignored are the file's other objects.
	ignored []string
}

// changedObjects are the objects a change holds: -f's, or the live
// workload with --image's images.
func changedObjects(po planOptions, ro *v1beta1.Rollout, live *unstructured.Unstructured) (string, []*unstructured.Unstructured, error) {
	if po.file != "" {
		objs, err := readObjects(po.file)
		if err != nil {
			return "", nil, withCode(ExitUsage, "reading %s: %v", po.file, err)
		}
		return po.file, objs, nil
	}
	source := "--image " + strings.Join(po.images, ",")
	ref := ro.Spec.WorkloadRef
	if live == nil {
		return "", nil, fmt.Errorf("%s: workload %s %s cannot be read", source, ref.Kind, ref.Name)
	}
	u := live.DeepCopy()
	unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(u.Object, "status")
	if err := setImages(u, po.images); err != nil {
		return "", nil, withCode(ExitUsage, "%s: %v", source, err)
	}
	return source, []*unstructured.Unstructured{u}, nil
}

// dryRun sends the change's workload and Rollout to the API server as a
// dry-run update and reads what they would become.
func dryRun(ctx context.Context, s *session, source string, objs []*unstructured.Unstructured, ro *v1beta1.Rollout, live *unstructured.Unstructured) (*dryRunView, *v1beta1.Rollout, error) {
	d := &dryRunView{source: source, replicas: -1}
	var newRollout *v1beta1.Rollout
	ref := ro.Spec.WorkloadRef
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		what := fmt.Sprintf("%s %s", gvk.Kind, u.GetName())
		switch {
		case gvk.Group == v1beta1.GroupVersion.Group && gvk.Kind == "Rollout" && u.GetName() == ro.Name:
			d.rollout = true
			u.SetNamespace(ro.Namespace)
			u.SetResourceVersion(ro.ResourceVersion)
			if err := s.c.Update(ctx, u, client.DryRunAll); err != nil {
				d.refused = append(d.refused, fmt.Sprintf("%s: %v", what, err))
				continue
			}
			nr, err := toV1beta1(s.c.Scheme(), u)
			if err != nil {
				return nil, nil, err
			}
			newRollout = nr
		case u.GetAPIVersion() == ref.APIVersion && gvk.Kind == ref.Kind && u.GetName() == ref.Name:
			d.workload = true
			if live == nil {
				d.refused = append(d.refused, fmt.Sprintf("%s: the workload cannot be read", what))
				continue
			}
			u.SetNamespace(ro.Namespace)
			u.SetResourceVersion(live.GetResourceVersion())
			if err := s.c.Update(ctx, u, client.DryRunAll); err != nil {
				d.refused = append(d.refused, fmt.Sprintf("%s: %v", what, err))
				continue
			}
			d.replicas = 1
			if n, found, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); found {
				d.replicas = int32(n)
			}
			was, _, _ := unstructured.NestedMap(live.Object, "spec", "template")
			now, _, _ := unstructured.NestedMap(u.Object, "spec", "template")
			d.templateChanged = !equality.Semantic.DeepEqual(was, now)
			if d.templateChanged && gvk.Kind == "Deployment" {
				d.revision = deploymentRevision(u)
			}
		default:
			d.ignored = append(d.ignored, what)
		}
	}
	if !d.workload && !d.rollout {
		return nil, nil, withCode(ExitUsage, "%s holds neither rollout %s nor its workload %s %s", source, ro.Name, ref.Kind, ref.Name)
	}
	return d, newRollout, nil
}

// deploymentRevision is the pod-template-hash the Deployment controller
// will give u's template.
func deploymentRevision(u *unstructured.Unstructured) string {
	dep := &appsv1.Deployment{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, dep); err != nil {
		return ""
	}
	return workload.TemplateHash(&dep.Spec.Template, dep.Status.CollisionCount)
}

// toV1beta1 reads a Rollout of either version as v1beta1.
func toV1beta1(s *runtime.Scheme, u *unstructured.Unstructured) (*v1beta1.Rollout, error) {
	if u.GroupVersionKind().Version == rolloutsv1alpha1.GroupVersion.Version {
		a := &rolloutsv1alpha1.Rollout{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, a); err != nil {
			return nil, err
		}
		b := &v1beta1.Rollout{}
		return b, a.ConvertTo(b)
	}
	b := &v1beta1.Rollout{}
	return b, s.Convert(u, b, nil)
}

// readObjects reads the objects of a YAML or JSON file (- is stdin).
func readObjects(file string) ([]*unstructured.Unstructured, error) {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "List" {
			items, _, _ := unstructured.NestedSlice(m, "items")
			for _, it := range items {
				if im, ok := it.(map[string]any); ok {
					out = append(out, &unstructured.Unstructured{Object: im})
				}
			}
			continue
		}
		out = append(out, u)
	}
}

// readableScripts reads the routing scripts, taking a ConfigMap the user
// may not read as none (the built-in rules then apply) and saying so.
type readableScripts struct {
	source script.Source
	note   string
}

func (r *readableScripts) Script(ctx context.Context, key string) (string, string, bool, error) {
	src, name, ok, err := r.source.Script(ctx, key)
	if apierrors.IsForbidden(errors.Unwrap(err)) || apierrors.IsForbidden(err) {
		r.note = fmt.Sprintf("the routing scripts could not be read (%v): the built-in rules are shown", err)
		return "", "", false, nil
	}
	return src, name, ok, err
}

// builtInNames are the names the built-in args workload, service and
// ingress stand for, as the release engine gives them.
func builtInNames(ro *v1beta1.Rollout) (wl, svc, ing string) {
	wl = ro.Spec.WorkloadRef.Name
	if rs := ro.Spec.Strategy.Routings(); len(rs) > 0 {
		svc = rs[0].Service
		if rs[0].Ingress != nil {
			ing = rs[0].Ingress.Name
		}
	}
	return wl, svc, ing
}

// gatherAnalyses builds the AnalysisRun of every step's analysis and of
// the background analysis as the release engine would, for the stable
// revision, and measures each distinct metric once.
func gatherAnalyses(ctx context.Context, c client.Reader, p prober, credentialsProxied func(*analysisv1alpha1.PrometheusProvider, string) bool, ro *v1beta1.Rollout, stable string, now time.Time) []analysisView {
	wl, svc, ing := builtInNames(ro)
	type ref struct {
		step int32
		a    *analysisv1alpha1.RolloutAnalysis
	}
	var refs []ref
	for i, st := range ro.Spec.Strategy.Steps() {
		if st.Analysis != nil {
			refs = append(refs, ref{int32(i + 1), st.Analysis})
		}
	}
	if a := ro.Spec.Strategy.Analysis; a != nil {
		refs = append(refs, ref{0, a})
	}
	var out []analysisView
	byKey := map[string]int{}
	measured := map[string]metricView{}
	for _, r := range refs {
		names := make([]string, len(r.a.Templates))
		for i, t := range r.a.Templates {
			names[i] = t.TemplateName
			if t.ClusterScope {
				names[i] += " (cluster)"
			}
		}
		specs, err := run.Templates(ctx, c, ro.Namespace, r.a.Templates)
		var ar *analysisv1alpha1.AnalysisRun
		if err == nil {
			ar, err = run.Build(run.Target{
				Namespace: ro.Namespace, Rollout: ro.Name, Workload: wl, Service: svc, Ingress: ing,
				StableRevision: stable, CanaryRevision: stable, StepIndex: r.step,
			}, specs, r.a)
		}
		key := strings.Join(names, ",")
		if err != nil {
			key += "\x00" + err.Error()
		} else {
			b, _ := json.Marshal(ar.Spec.Metrics)
			key += "\x00" + string(b)
		}
		if i, ok := byKey[key]; ok && r.step > 0 && len(out[i].steps) > 0 {
			out[i].steps = append(out[i].steps, r.step)
			continue
		}
		av := analysisView{templates: names, err: err, policy: r.a}
		if r.step > 0 {
			av.steps = []int32{r.step}
		}
		if err == nil {
			for _, m := range ar.Spec.Metrics {
				b, _ := json.Marshal(m)
				mv, ok := measured[string(b)]
				if !ok {
					mv = checkMetric(ctx, p, credentialsProxied, ro.Namespace, m, now)
					measured[string(b)] = mv
				}
				av.metrics = append(av.metrics, mv)
			}
		}
		byKey[key] = len(out)
		out = append(out, av)
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].steps) > 0 && len(out[j].steps) == 0 })
	return out
}
