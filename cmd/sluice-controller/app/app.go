// Package app is sluice-controller, Sluice's manager, as a function: it
// serves the Rollout conversion and the admission webhooks and runs the
// controllers. The sluice-controller command is Run with its command line;
// the playground runs the same Run in a child process of its own binary,
// so it needs no separate build.
//
// In a cluster the manager points its webhook configurations at its
// Service. With --dev-webhook-host it runs outside the cluster (for the
// local control plane) and registers https://HOST:PORT URLs instead.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	analysisadmission "github.com/sluicehq/sluice/analysis/admission"
	analysisrun "github.com/sluicehq/sluice/analysis/run"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/cmd/sluice-controller/internal/webhooks"
	"github.com/sluicehq/sluice/rollout"
	rolloutadmission "github.com/sluicehq/sluice/rollout/admission"
	rolloutmetrics "github.com/sluicehq/sluice/rollout/metrics"
	"github.com/sluicehq/sluice/traffic/script"
	"github.com/sluicehq/sluice/trafficrouting"
	"github.com/sluicehq/sluice/workload"
	"github.com/sluicehq/sluice/workload/freeze"
)

// Leader election: the Lease in the manager's namespace (the chart puts
// this Role's rules in its release namespace).
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=sluice-system,resources=leases,verbs=create
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=sluice-system,resources=leases,resourceNames=sluice-controller.sluice.dev,verbs=get;update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

type options struct {
	metricsAddr, probeAddr  string
	leaderElect             bool
	leaderElectionNamespace string
	leaseDuration           time.Duration
	renewDeadline           time.Duration
	retryPeriod             time.Duration
	webhookPort             int
	certDir                 string
	devWebhookHost          string
	serviceName, namespace  string
	servicePort             int
	webhookConfigName       string
	partitionPercentLimit   int
	certCheckInterval       time.Duration
	prometheusAddress       string
	prometheusAuth          analysisv1alpha1.PrometheusAuthentication
	rolloutWorkers          int
	keepPausedOnDeletion    bool
	analysisRunWorkers      int
	kubeAPIQPS              float64
	kubeAPIBurst            int
	notifications           notifyOptions
	analysisTemplates       string
	watchLabelSelector      string
	leaderElectionID        string
	zap                     zap.Options
	showVersion             bool
}

// UsageError is a command line that cannot work: the program should say so
// and exit with status 2.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Main runs the manager with the command line args until SIGTERM or
// SIGINT and returns the exit status: 0, 2 for a command line that cannot
// work (said on stderr), 1 for a failure (logged).
func Main(args []string) int {
	err := Run(ctrl.SetupSignalHandler(), args)
	var usage UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "sluice-controller:", err)
		return 2
	default:
		return 1
	}
}

// Run runs the manager with the command line args (without the program
// name) until ctx ends. Flag errors and invalid combinations are a
// UsageError (the flag errors already printed with the usage to stderr;
// -h gives flag.ErrHelp); any other error is also logged.
func Run(ctx context.Context, args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	if o.showVersion {
		fmt.Fprintln(os.Stdout, Version())
		return nil
	}
	if err := o.validate(); err != nil {
		return UsageError{err}
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	if err := run(ctx, o); err != nil {
		ctrl.Log.Error(err, "sluice-controller failed")
		return err
	}
	return nil
}

// parse reads the command line (flag errors are printed with the usage
// and returned as a UsageError; -h gives flag.ErrHelp).
func parse(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("sluice-controller", flag.ContinueOnError)
	fs.BoolVar(&o.showVersion, "version", false, "print the version and revision and exit")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address of the /metrics endpoint (0 disables it)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader so that only one replica runs the controllers")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "", "name of the leader-election Lease (default: "+defaultLeaseName+", or with --watch-label-selector one derived from the selector, so that each shard elects its own leader)")
	fs.StringVar(&o.watchLabelSelector, "watch-label-selector", "", "shard: reconcile only the Rollouts (and their AnalysisRuns) whose labels match, e.g. "+ShardKeyLabel+"=shard1, or !"+ShardKeyLabel+" for the default shard (docs/sharding.md)")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader-election Lease (default: --namespace)")
	// controller-runtime's defaults. A leader that crashes holds the Lease
	// until it expires: the lease duration is the longest a release waits
	// for another replica to take over (a stopped leader hands over at once).
	fs.DurationVar(&o.leaseDuration, "leader-election-lease-duration", 15*time.Second, "how long the other replicas wait, from the leader's last renewal, before taking over its Lease")
	fs.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader keeps trying to renew its Lease before it gives up leading (and exits)")
	fs.DurationVar(&o.retryPeriod, "leader-election-retry-period", 2*time.Second, "how often the replicas try to acquire or renew the Lease")
	fs.IntVar(&o.webhookPort, "webhook-port", 9876, "port the webhooks are served on")
	fs.StringVar(&o.certDir, "cert-dir", filepath.Join(os.TempDir(), "sluice-webhook-certs"), "where the webhook serving certificate is written")
	fs.StringVar(&o.devWebhookHost, "dev-webhook-host", "", "development mode: register webhooks as https://HOST:PORT URLs (e.g. 127.0.0.1) and keep certificates in --cert-dir instead of a Secret")
	fs.StringVar(&o.namespace, "namespace", envOr("POD_NAMESPACE", "sluice-system"), "namespace of the manager (its Service, certificate Secret and Lease)")
	fs.StringVar(&o.serviceName, "webhook-service-name", "sluice-webhook", "Service in --namespace that fronts the webhook port")
	fs.IntVar(&o.servicePort, "webhook-service-port", 443, "port of --webhook-service-name that leads to --webhook-port")
	fs.StringVar(&o.webhookConfigName, "webhook-configuration-name", "sluice", "name of the Validating/MutatingWebhookConfiguration this manager owns")
	fs.IntVar(&o.partitionPercentLimit, "partition-percent-limit", rolloutadmission.DefaultOptions.PartitionPercentLimit, "largest percentage of replicas a partition-style step that routes traffic may have")
	fs.DurationVar(&o.certCheckInterval, "cert-check-interval", time.Hour, "how often the webhook certificate is checked for renewal")
	fs.StringVar(&o.prometheusAddress, "prometheus-address", "", "Prometheus used by analysis metrics that name no address, e.g. http://prometheus.monitoring:9090")
	fs.StringVar(&o.prometheusAuth.SecretName, "prometheus-auth-secret", "", "Secret in --namespace with the credentials sent to --prometheus-address by metrics that name no authentication; the --prometheus-auth-*-key flags name its keys")
	fs.StringVar(&o.prometheusAuth.BearerTokenKey, "prometheus-auth-bearer-token-key", "", "key of --prometheus-auth-secret holding a bearer token")
	fs.StringVar(&o.prometheusAuth.UsernameKey, "prometheus-auth-username-key", "", "key of --prometheus-auth-secret holding a basic-auth username")
	fs.StringVar(&o.prometheusAuth.PasswordKey, "prometheus-auth-password-key", "", "key of --prometheus-auth-secret holding a basic-auth password")
	fs.StringVar(&o.prometheusAuth.CAKey, "prometheus-auth-ca-key", "", "key of --prometheus-auth-secret holding a PEM CA bundle for --prometheus-address")
	// Defaults from the fleet benchmark (docs/benchmarks.md): with 100
	// releases at once, 4 workers and 50 QPS queued transitions behind the
	// client's rate limiter (p50 1.4 s); 16 and 300 brought p50 to 0.2 s.
	// Nothing is spent at rest (no request while every Rollout is idle).
	fs.IntVar(&o.rolloutWorkers, "rollout-workers", 48, "how many Rollouts are reconciled at once")
	fs.BoolVar(&o.keepPausedOnDeletion, "keep-workload-paused-on-rollout-deletion", false, "a Rollout deleted mid-release leaves its workload where the release held it (partition kept, Deployment paused, DaemonSet on OnDelete) so that it can be rolled back, instead of letting it finish (Kruise's KeepWorkloadPausedOnRolloutDeletion feature gate)")
	fs.IntVar(&o.analysisRunWorkers, "analysisrun-workers", 4, "how many AnalysisRuns are measured at once")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", 300, "requests per second the manager may send to the API server, on average")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", 600, "requests the manager may send to the API server in a burst")
	o.notifications.bindFlags(fs)
	fs.StringVar(&o.analysisTemplates, "install-analysis-templates", "", "apply the ready-made ClusterAnalysisTemplates of these integrations (all, or e.g. ingress-nginx,kube-state-metrics; docs/analysis-templates.md) once the webhooks answer")
	// --kubeconfig, read by ctrl.GetConfig.
	config.RegisterFlags(fs)
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, UsageError{err}
	}
	if fs.NArg() > 0 {
		return o, UsageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	return o, nil
}

func (o *options) validate() error {
	a := o.prometheusAuth
	keys := a.BearerTokenKey != "" || a.UsernameKey != "" || a.PasswordKey != "" || a.CAKey != ""
	switch {
	case a.SecretName == "" && keys:
		return errors.New("the --prometheus-auth-*-key flags need --prometheus-auth-secret")
	case a.SecretName != "" && !keys:
		return errors.New("--prometheus-auth-secret needs at least one --prometheus-auth-*-key flag")
	case a.BearerTokenKey != "" && (a.UsernameKey != "" || a.PasswordKey != ""):
		return errors.New("use either --prometheus-auth-bearer-token-key or the username and password keys, not both")
	case (a.UsernameKey == "") != (a.PasswordKey == ""):
		return errors.New("--prometheus-auth-username-key and --prometheus-auth-password-key go together")
	case o.servicePort < 1 || o.servicePort > 65535:
		return fmt.Errorf("--webhook-service-port %d is not a port", o.servicePort)
	case o.rolloutWorkers < 1 || o.analysisRunWorkers < 1:
		return errors.New("--rollout-workers and --analysisrun-workers must be at least 1")
	case o.kubeAPIQPS <= 0 || o.kubeAPIBurst < 1:
		return errors.New("--kube-api-qps must be positive and --kube-api-burst at least 1")
	}
	if err := o.notifications.validate(); err != nil {
		return err
	}
	if _, err := readyMadeTemplates(o.analysisTemplates); err != nil {
		return err
	}
	if _, err := o.shardSelector(); err != nil {
		return err
	}
	return o.validateLeaderElection()
}

// validateLeaderElection applies client-go's rules for the Lease timings
// (which it would otherwise report only once elected, as a panic).
func (o *options) validateLeaderElection() error {
	switch {
	case o.retryPeriod <= 0:
		return fmt.Errorf("--leader-election-retry-period %s must be positive", o.retryPeriod)
	case o.renewDeadline <= time.Duration(leaderelection.JitterFactor*float64(o.retryPeriod)):
		return fmt.Errorf("--leader-election-renew-deadline %s must be longer than %g × --leader-election-retry-period (%s)",
			o.renewDeadline, leaderelection.JitterFactor, o.retryPeriod)
	case o.leaseDuration <= o.renewDeadline:
		return fmt.Errorf("--leader-election-lease-duration %s must be longer than --leader-election-renew-deadline %s",
			o.leaseDuration, o.renewDeadline)
	}
	return nil
}

// Scheme knows every kind the manager reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	utilruntime.Must(v1beta1.AddToScheme(s))
	utilruntime.Must(analysisv1alpha1.AddToScheme(s))
	return s
}

func run(ctx context.Context, o options) error {
	log := ctrl.Log.WithName("setup")
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("no Kubernetes configuration (set --kubeconfig outside a cluster): %w", err)
	}
	cfg.UserAgent = "sluice-controller"
	cfg.QPS, cfg.Burst = float32(o.kubeAPIQPS), o.kubeAPIBurst
	scheme := Scheme()
	kruiseKinds, err := waitForAPIs(ctx, cfg, log)
	if err != nil {
		return err
	}

	shard, err := o.shardSelector()
	if err != nil {
		return err
	}
	leNamespace := o.leaderElectionNamespace
	if leNamespace == "" {
		leNamespace = o.namespace
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOptions(kruiseKinds, shard),
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        o.leaseName(),
		LeaderElectionNamespace: leNamespace,
		LeaseDuration:           &o.leaseDuration,
		RenewDeadline:           &o.renewDeadline,
		RetryPeriod:             &o.retryPeriod,
		// A stopped leader (SIGTERM: a rolling update, a drain) gives the
		// Lease up at once instead of making the next leader wait for it to
		// expire. Safe because Main returns, and the process exits, as soon
		// as the manager has stopped.
		LeaderElectionReleaseOnCancel: true,
		// In development mode the webhooks listen on the registered host only.
		WebhookServer: webhook.NewServer(webhook.Options{Host: o.devWebhookHost, Port: o.webhookPort, CertDir: o.certDir}),
	})
	if err != nil {
		return err
	}

	rotator, err := newRotator(cfg, scheme, o)
	if err != nil {
		return err
	}
	if _, err := rotator.EnsureFiles(ctx); err != nil {
		return err
	}
	started := mgr.GetWebhookServer().StartedChecker()
	register := rotator.Register
	rotator.Register = func(ctx context.Context, caBundle []byte) error {
		// Register only once the server answers, so the API server never
		// calls a webhook that is not there yet.
		for started(nil) != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		return register(ctx, caBundle)
	}
	if err := mgr.Add(rotator); err != nil {
		return err
	}

	if err := setupWebhooks(mgr, o); err != nil {
		return err
	}
	if err := setupControllers(mgr, o, shard); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhooks", started); err != nil {
		return err
	}
	log.Info("starting manager", "webhookPort", o.webhookPort, "devWebhookHost", o.devWebhookHost, "watchLabelSelector", o.watchLabelSelector, "lease", o.leaseName())
	return mgr.Start(ctx)
}

func setupWebhooks(mgr ctrl.Manager, o options) error {
	// The Rollout conversion (v1alpha1 <-> v1beta1) on /convert.
	if err := builder.WebhookManagedBy(mgr, &v1beta1.Rollout{}).Complete(); err != nil {
		return err
	}
	decoder := admission.NewDecoder(mgr.GetScheme())
	srv := mgr.GetWebhookServer()
	// Admission reads from the API server, not the cache: a template and
	// the Rollout that names it are often applied together (one kubectl
	// apply), and the cache may not have the template yet.
	srv.Register(rolloutadmission.Path, &webhook.Admission{Handler: &rolloutadmission.Validator{
		Client:  mgr.GetAPIReader(),
		Decoder: decoder,
		Options: rolloutadmission.Options{PartitionPercentLimit: o.partitionPercentLimit},
	}})
	// The freeze webhook holds a workload to the batch its Rollout's
	// status records: it must read the latest status, not the cache's.
	srv.Register(freeze.Path, &webhook.Admission{Handler: &freeze.Handler{Client: mgr.GetAPIReader(), Cached: mgr.GetClient(), Decoder: decoder}})
	srv.Register(analysisadmission.TemplatePath, &webhook.Admission{Handler: &analysisadmission.TemplateValidator{Decoder: decoder}})
	srv.Register(trafficrouting.AdmissionPath, &webhook.Admission{Handler: &trafficrouting.Validator{Decoder: decoder}})
	return nil
}

// setupControllers registers the reconcilers, one line each.
func setupControllers(mgr ctrl.Manager, o options, shard labels.Selector) error {
	// Scripts are read straight from the API server: one GET per call,
	// instead of a cluster-wide ConfigMap informer.
	scripts := script.ConfigMaps{Reader: mgr.GetAPIReader(), Namespace: o.namespace, Names: []string{script.DefaultConfigMap, script.KruiseConfigMap}}
	recorder, err := rolloutmetrics.NewRecorder(ctrlmetrics.Registry, mgr.GetClient(), mgr.Elected())
	if err != nil {
		return err
	}
	// The traffic calls read and write Services and routing objects
	// directly: the manager does not cache them (cache.go).
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return err
	}
	if err := (&rollout.Reconciler{
		Client: mgr.GetClient(), Live: mgr.GetAPIReader(), Traffic: direct, Workers: o.rolloutWorkers,
		Recorder: mgr.GetEventRecorder("sluice-rollout"), Now: time.Now, Scripts: scripts, Observer: recorder,
		Workloads: workload.Options{KeepPausedOnRolloutDeletion: o.keepPausedOnDeletion},
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&trafficrouting.Reconciler{
		Client: mgr.GetClient(), Live: mgr.GetAPIReader(), Traffic: direct, Scripts: scripts,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	ao := analysisrun.Options{PrometheusAddress: o.prometheusAddress, MaxConcurrentReconciles: o.analysisRunWorkers}
	if o.prometheusAuth.SecretName != "" {
		ao.PrometheusAuthentication, ao.PrometheusAuthNamespace = &o.prometheusAuth, o.namespace
	}
	if shard != nil {
		ao.Shard = &analysisrun.Shard{Owner: &v1beta1.Rollout{}, Selector: shard}
	}
	if err := analysisrun.SetupWithManager(mgr, ao); err != nil {
		return err
	}
	if o.analysisTemplates != "" {
		if err := mgr.Add(&templateInstaller{client: mgr.GetClient(), integrations: strings.Split(o.analysisTemplates, ","), log: ctrl.Log.WithName("analysis-templates")}); err != nil {
			return err
		}
	}
	return setupNotifier(mgr, o)
}

// newRotator builds the certificate rotator for the mode: a Secret shared
// by the replicas and a Service in a cluster, files and URLs in
// development mode.
func newRotator(cfg *rest.Config, scheme *runtime.Scheme, o options) (*webhooks.Rotator, error) {
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	registrar := &webhooks.Registrar{
		Client:        direct,
		Name:          o.webhookConfigName,
		ConvertedCRDs: []string{"rollouts.rollouts.kruise.io"},
		MutatingObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: workload.WorkloadTypeLabel, Operator: metav1.LabelSelectorOpExists},
		}},
	}
	r := &webhooks.Rotator{
		CertDir:  o.certDir,
		Interval: o.certCheckInterval,
		Now:      time.Now,
		Log:      ctrl.Log.WithName("webhook-certs"),
		Register: registrar.Register,
	}
	if o.devWebhookHost != "" {
		base := fmt.Sprintf("https://%s", net.JoinHostPort(o.devWebhookHost, fmt.Sprint(o.webhookPort)))
		registrar.ClientConfig = func(path string) admissionregistrationv1.WebhookClientConfig {
			u := base + path
			return admissionregistrationv1.WebhookClientConfig{URL: &u}
		}
		r.Store = webhooks.DirStore{Dir: filepath.Join(o.certDir, "ca")}
		if ip := net.ParseIP(o.devWebhookHost); ip != nil {
			r.Names = webhooks.Names{IPs: []net.IP{ip}, DNS: []string{"localhost"}}
		} else {
			r.Names = webhooks.Names{DNS: []string{o.devWebhookHost}}
		}
		return r, nil
	}
	port := int32(o.servicePort)
	registrar.ClientConfig = func(path string) admissionregistrationv1.WebhookClientConfig {
		p := path
		return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
			Namespace: o.namespace, Name: o.serviceName, Path: &p, Port: &port,
		}}
	}
	r.Store = &webhooks.SecretStore{Client: direct, Key: types.NamespacedName{Namespace: o.namespace, Name: o.serviceName + "-cert"}}
	svc := o.serviceName + "." + o.namespace + ".svc"
	r.Names = webhooks.Names{DNS: []string{svc, svc + ".cluster.local"}}
	return r, nil
}

func envOr(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}
