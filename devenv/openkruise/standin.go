package openkruise

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

//go:embed crds.yaml
var crdsYAML []byte

// CRDs are the CloneSet, Advanced StatefulSet and Advanced DaemonSet CRDs.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var out []*apiextensionsv1.CustomResourceDefinition
	r := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(crdsYAML), 4096)
	for {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := r.Decode(crd); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("crds.yaml: %w", err)
		}
		out = append(out, crd)
	}
}

// Install creates (or updates) the CRDs and waits until the API server
// serves them. A controller that watches OpenKruise's kinds must start (or
// restart) after it.
func Install(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return err
	}
	crds, err := CRDs()
	if err != nil {
		return err
	}
	for _, crd := range crds {
		err := c.Create(ctx, crd)
		if apierrors.IsAlreadyExists(err) {
			cur := &apiextensionsv1.CustomResourceDefinition{}
			if err = c.Get(ctx, client.ObjectKeyFromObject(crd), cur); err == nil {
				cur.Spec = crd.Spec
				err = c.Update(ctx, cur)
			}
		}
		if err != nil {
			return fmt.Errorf("installing CRD %s: %w", crd.Name, err)
		}
	}
	for _, crd := range crds {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			cur := &apiextensionsv1.CustomResourceDefinition{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(crd), cur); err != nil {
				return false, err
			}
			for _, cond := range cur.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", crd.Name, err)
		}
	}
	return nil
}

// Options tune a stand-in.
type Options struct {
	// Logger receives the controllers' and the webhook's logs; default none.
	Logger logr.Logger
	// Clock is the time pods are judged available by; default the real one.
	Clock clock.PassiveClock
}

// StandIn runs OpenKruise's CloneSet, Advanced StatefulSet and Advanced
// DaemonSet controllers
// and their defaulting webhooks in the calling process.
type StandIn struct {
	client  client.Client
	webhook *webhookServer
	cancel  context.CancelFunc
	done    chan error
}

func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(scheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return s
}

// Start starts the controllers and the webhook server and registers the
// webhooks (MutatingWebhookConfiguration WebhookConfigurationName, pointing
// at https://127.0.0.1:<port> with its own CA). It returns once the
// controllers' caches are in sync and the API server calls the webhooks.
// The CRDs must be installed (Install). Stop undoes it all.
func Start(ctx context.Context, cfg *rest.Config, o Options) (_ *StandIn, err error) {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	log := o.Logger
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  newScheme(),
		Logger:  log,
		Metrics: metricsserver.Options{BindAddress: "0"},
		// Several stand-ins may run in one process, one after the other.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	h := history{client: mgr.GetClient(), reader: mgr.GetAPIReader()}
	cloneSets := &cloneSetReconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader(), history: h, clock: o.Clock, log: log.WithName("cloneset")}
	statefulSets := &statefulSetReconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader(), history: h, clock: o.Clock, log: log.WithName("statefulset")}
	if err := addController(mgr, "openkruise-cloneset", CloneSetKind, cloneSets); err != nil {
		return nil, err
	}
	if err := addController(mgr, "openkruise-statefulset", AdvancedStatefulSetKind, statefulSets); err != nil {
		return nil, err
	}
	daemonSets := &daemonSetReconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader(), clock: o.Clock, log: log.WithName("daemonset")}
	if err := addDaemonSetController(mgr, daemonSets); err != nil {
		return nil, err
	}
	s := &StandIn{client: mgr.GetClient(), done: make(chan error, 1)}
	if s.webhook, err = startWebhookServer(&defaulter{client: mgr.GetClient()}); err != nil {
		return nil, err
	}
	var runCtx context.Context
	runCtx, s.cancel = context.WithCancel(context.Background())
	go func() { s.done <- mgr.Start(runCtx) }()
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the stand-in's caches did not sync")
	}
	direct, err := client.New(cfg, client.Options{Scheme: newScheme()})
	if err != nil {
		return nil, err
	}
	s.client = direct
	if err := register(ctx, direct, s.webhook.configuration()); err != nil {
		return nil, err
	}
	return s, waitCalled(ctx, direct)
}

// addController runs r on the workloads of kind and on changes of the pods
// they own, several workloads at once (each one by one pass).
func addController(mgr ctrl.Manager, name string, kind schema.GroupVersionKind, r reconcile.Reconciler) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(kind)
	return ctrl.NewControllerManagedBy(mgr).Named(name).For(u).Owns(&corev1.Pod{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).Complete(r)
}

// addDaemonSetController runs the Advanced DaemonSet controller on its
// DaemonSets, their pods, and every node change (a node added or gone
// changes what each DaemonSet wants).
func addDaemonSetController(mgr ctrl.Manager, r *daemonSetReconciler) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(AdvancedDaemonSetKind)
	allDaemonSets := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(AdvancedDaemonSetKind.GroupVersion().WithKind("DaemonSetList"))
		if err := mgr.GetClient().List(ctx, l); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, d := range l.Items {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&d)})
		}
		return out
	})
	return ctrl.NewControllerManagedBy(mgr).Named("openkruise-daemonset").For(u).Owns(&corev1.Pod{}).
		Watches(&corev1.Node{}, allDaemonSets).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).Complete(r)
}

// waitCalled waits until the API server calls the webhook: a CloneSet
// created in a dry run comes back with its partition defaulted.
func waitCalled(ctx context.Context, c client.Client) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		u := &unstructured.Unstructured{Object: map[string]any{
			"metadata": map[string]any{"generateName": "openkruise-webhook-probe-", "namespace": metav1.NamespaceDefault},
			"spec": map[string]any{
				"selector": map[string]any{"matchLabels": map[string]any{"probe": "x"}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"probe": "x"}},
					"spec":     map[string]any{"containers": []any{map[string]any{"name": "probe", "image": "probe"}}},
				},
			},
		}}
		u.SetGroupVersionKind(CloneSetKind)
		if err := c.Create(ctx, u, client.DryRunAll); err != nil {
			return false, nil // the CRD or the webhook is not ready yet
		}
		_, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "updateStrategy", "partition")
		return found, nil
	})
}

// Stop unregisters the webhooks (they fail closed: left registered, they
// would block every CloneSet write) and stops the controllers.
func (s *StandIn) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigurationName}}
	_ = client.IgnoreNotFound(s.client.Delete(ctx, cfg))
	_ = s.webhook.stop(ctx)
	s.cancel()
	<-s.done
}
