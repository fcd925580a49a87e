package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	rolloutsv1alpha1 "github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func scheme() *kruntime.Scheme {
	s := kruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(rolloutsv1alpha1.AddToScheme(s))
	utilruntime.Must(v1beta1.AddToScheme(s))
	utilruntime.Must(analysisv1alpha1.AddToScheme(s))
	return s
}

// session is a client and the namespace the flags chose.
type session struct {
	c         client.Client
	namespace string
	// cfg is the client's configuration (plan reaches Prometheus Services
	// through the API server with it).
	cfg *rest.Config
}

// connect builds the client from the kubeconfig flags (once).
func (o *options) connect() (*session, error) {
	if o.session != nil {
		return o.session, nil
	}
	cfg, err := o.config.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("no usable kubeconfig: %w (set --kubeconfig or KUBECONFIG, or --context)", err)
	}
	cfg.UserAgent = "kubectl-sluice"
	ns, _, err := o.config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace from the kubeconfig: %w (set -n NAMESPACE)", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, apiError(err, "connecting to "+cfg.Host)
	}
	o.session = &session{c: c, namespace: ns, cfg: cfg}
	return o.session, nil
}

// apiError says what failed and what to do about it.
func apiError(err error, doing string) error {
	var urlErr *url.Error
	var netErr net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case apierrors.IsNotFound(err):
		return &exitError{code: ExitNotFound, err: fmt.Errorf("%s: %w", doing, err)}
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %w (your user lacks that permission: ask for RBAC on rollouts.kruise.io rollouts, rollouts/status, analysis.sluice.dev analysisruns and the workload)", doing, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: %w (check your credentials: --kubeconfig, --context, --user)", doing, err)
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s: %w (the object changed meanwhile: run the command again)", doing, err)
	case meta.IsNoMatchError(err):
		return fmt.Errorf("%s: %w (the cluster does not serve Sluice's APIs: install its CRDs with kubectl apply -f deploy/crds/)", doing, err)
	case errors.As(err, &urlErr), errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach the API server: %w (check --kubeconfig, --context or --server)", doing, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// getRollout reads one Rollout; a missing one says how to find the others.
func (s *session) getRollout(ctx context.Context, name string) (*v1beta1.Rollout, error) {
	r := &v1beta1.Rollout{}
	err := s.c.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, r)
	if apierrors.IsNotFound(err) {
		return nil, withCode(ExitNotFound, "rollout %q not found in namespace %q: list them with `kubectl sluice get -n %s` (or -A for every namespace)", name, s.namespace, s.namespace)
	}
	if err != nil {
		return nil, apiError(err, fmt.Sprintf("reading rollout %s/%s", s.namespace, name))
	}
	return r, nil
}

// snapshot reads a Rollout's workload size and, with runs, its current
// AnalysisRuns. What cannot be read is left out of the view rather than
// failing it.
func (s *session) snapshot(ctx context.Context, r *v1beta1.Rollout, runs bool) snapshot {
	sn := snapshot{rollout: r, replicas: s.workloadReplicas(ctx, r)}
	if a := r.Status.Analysis; runs && a != nil {
		get := func(rs *analysisv1alpha1.RunStatus) *analysisv1alpha1.AnalysisRun {
			if rs == nil || rs.Name == "" {
				return nil
			}
			ar := &analysisv1alpha1.AnalysisRun{}
			if err := s.c.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: rs.Name}, ar); err != nil {
				return nil
			}
			return ar
		}
		sn.stepRun, sn.backgroundRun = get(a.StepRun), get(a.BackgroundRun)
	}
	return sn
}

// workloadReplicas is the workload's spec.replicas, -1 when unknown.
func (s *session) workloadReplicas(ctx context.Context, r *v1beta1.Rollout) int32 {
	ref := r.Spec.WorkloadRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || ref.Kind == "" || ref.Name == "" {
		return -1
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gv.WithKind(ref.Kind))
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: ref.Name}, u); err != nil {
		return -1
	}
	v, found, err := unstructured.NestedInt64(u.Object, "spec", "replicas")
	switch {
	case err != nil:
		return -1
	case !found:
		return 1
	}
	return int32(v)
}
