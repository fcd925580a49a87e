package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// The notifier reads the two ConfigMaps and their Secrets by name, never
// listing or watching them (get on Secrets in every namespace is granted
// by the chart's notifications values; see docs/notifications.md).
// +kubebuilder:rbac:groups="",resources=configmaps,resourceNames=sluice-notifications-cm,verbs=get

// Notifier watches Rollouts and queues a message for each event of their
// status that a subscription asks for and that was not sent before.
type Notifier struct {
	// Client reads Rollouts (the manager's cache) and patches their
	// NotifiedAnnotation.
	Client client.Client
	// Live reads ConfigMaps and Secrets (and the Rollout before a patch)
	// from the API server.
	Live client.Reader
	// Namespace is the controller's: its ConfigMap applies to every Rollout.
	Namespace string
	Queue     *Queue
	Recorder  events.EventRecorder
	Metrics   *Metrics
	Now       func() time.Time
	// MaxAge: an event older than this when first seen is not sent (a
	// Rollout that completed last month is not news when notifications
	// are turned on). Default 1h.
	MaxAge time.Duration

	mu sync.Mutex
	// handled holds, per Rollout, the keys of its current events whose
	// messages are queued or need none, so another reconcile does not
	// queue them again before NotifiedAnnotation shows them; inflight the
	// record keys being delivered. Both are only a shortcut: the
	// annotation is what survives a restart.
	handled  map[types.UID]map[string]bool
	inflight map[string]bool
}

// SetupWithManager registers the notifier and its queue with mgr.
func (n *Notifier) SetupWithManager(mgr ctrl.Manager) error {
	n.Queue.Done = n.done
	if err := mgr.Add(n.Queue); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1beta1.Rollout{}).
		Named("notify").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(n)
}

// Reconcile queues the messages of the Rollout's events not sent yet.
func (n *Notifier) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ro := &v1beta1.Rollout{}
	if err := n.Client.Get(ctx, req.NamespacedName, ro); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	sent := ParseNotified(ro.Annotations[NotifiedAnnotation])
	now := n.now()
	var due []Event
	current := map[string]bool{}
	for _, e := range EventsOf(ro) {
		current[e.Key] = true
		if n.isHandled(ro.UID, e.Key) || now.Sub(e.At) > n.maxAge() {
			continue
		}
		due = append(due, e)
	}
	n.keepOnly(ro.UID, current)
	if len(due) == 0 {
		return ctrl.Result{}, nil
	}
	configs, err := n.configs(ctx, ro.Namespace)
	if err != nil {
		n.Recorder.Eventf(ro, nil, corev1.EventTypeWarning, "NotificationConfigInvalid", "Notify", "%v", err)
		// A fixed ConfigMap triggers no reconcile: look again later.
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	}
	ref := RolloutRef{Namespace: ro.Namespace, Name: ro.Name, UID: string(ro.UID)}
	for _, e := range due {
		msg := NewMessage(ref, e)
		for _, d := range Subscribed(e.Trigger, ro.Annotations, configs...) {
			key := e.Key + "/" + d.String()
			if _, ok := sent[key]; ok || !n.startFlight(key, ro.UID) {
				continue
			}
			j := &Job{Rollout: ref, Key: key, Trigger: e.Trigger, Destination: d, Message: msg, Resolve: n.resolver(d, configs)}
			if !n.Queue.Enqueue(j) {
				n.endFlight(key, ro.UID)
				n.Metrics.observe(e.Trigger, d.Service, ResultDropped)
				n.Recorder.Eventf(ro, nil, corev1.EventTypeWarning, "NotificationDropped", "Notify",
					"%s to %s not sent: the notification queue is full", e.Trigger, d)
			}
		}
		n.markHandled(ro.UID, e.Key)
	}
	n.Metrics.queued(n.Queue.Len())
	return ctrl.Result{}, nil
}

// configs reads the Rollout namespace's ConfigMap, then the controller's.
func (n *Notifier) configs(ctx context.Context, namespace string) ([]Config, error) {
	var out []Config
	for _, ns := range uniq(namespace, n.Namespace) {
		cm := &corev1.ConfigMap{}
		if err := n.Live.Get(ctx, types.NamespacedName{Namespace: ns, Name: ConfigMapName}, cm); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading %s/%s: %w", ns, ConfigMapName, err)
		}
		c, err := ParseConfig(ns, cm.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// resolver finds destination d's service and reads its Secret at delivery.
func (n *Notifier) resolver(d Destination, configs []Config) func(context.Context) (Target, error) {
	return func(ctx context.Context) (Target, error) {
		svc, ok := Lookup(d.Service, configs...)
		if !ok {
			return Target{}, Permanent{fmt.Errorf("no service %q in %s (data key service.webhook.%s or service.slack.%s)", d.Service, ConfigMapName, d.Service, d.Service)}
		}
		var secret map[string][]byte
		needs := strings.HasPrefix(svc.URL, "$") || strings.HasPrefix(svc.WebhookURL, "$")
		for _, h := range svc.Headers {
			needs = needs || strings.HasPrefix(h.Value, "$")
		}
		if needs {
			s := &corev1.Secret{}
			if err := n.Live.Get(ctx, types.NamespacedName{Namespace: svc.Namespace, Name: SecretName}, s); err != nil {
				return Target{}, fmt.Errorf("service %s: reading Secret %s/%s: %w", svc.Name, svc.Namespace, SecretName, err)
			}
			secret = s.Data
		}
		return target(svc, d, secret)
	}
}

// target resolves a service's $key references against its Secret.
func target(svc Service, d Destination, secret map[string][]byte) (Target, error) {
	t := Target{Kind: svc.Kind, Channel: svc.Channel, Username: svc.Username, Recipient: d.Recipient, Headers: http.Header{}}
	raw := svc.URL
	if svc.Kind == KindSlack {
		raw = svc.WebhookURL
	}
	var err error
	if t.URL, err = Resolve(raw, secret); err != nil {
		return t, Permanent{fmt.Errorf("service %s: %w", svc.Name, err)}
	}
	for _, h := range svc.Headers {
		v, err := Resolve(h.Value, secret)
		if err != nil {
			return t, Permanent{fmt.Errorf("service %s: header %s: %w", svc.Name, h.Name, err)}
		}
		t.Headers.Add(h.Name, v)
	}
	if svc.Timeout != "" {
		if t.Timeout, err = time.ParseDuration(svc.Timeout); err != nil {
			return t, Permanent{fmt.Errorf("service %s: timeout: %w", svc.Name, err)}
		}
	}
	return t, nil
}

// done records how a job ended on its Rollout, counts it and, when it
// failed, says so in an Event.
func (n *Notifier) done(ctx context.Context, j *Job, r Result, err error) {
	defer n.endFlight(j.Key, types.UID(j.Rollout.UID))
	n.Metrics.observe(j.Trigger, j.Destination.Service, r)
	n.Metrics.queued(n.Queue.Len())
	ro, rerr := n.record(ctx, j, r)
	if rerr != nil {
		ctrl.LoggerFrom(ctx).Error(rerr, "recording a notification", "rollout", j.Rollout.Namespace+"/"+j.Rollout.Name, "key", j.Key)
	}
	if r == ResultFailed && ro != nil {
		n.Recorder.Eventf(ro, nil, corev1.EventTypeWarning, "NotificationFailed", "Notify",
			"%s to %s failed: %v", j.Trigger, j.Destination, err)
	}
}

// record adds the job's result to the Rollout's NotifiedAnnotation (a
// merge patch with the resourceVersion read, retried on conflict).
func (n *Notifier) record(ctx context.Context, j *Job, r Result) (*v1beta1.Rollout, error) {
	var ro *v1beta1.Rollout
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ro = &v1beta1.Rollout{}
		if err := n.Live.Get(ctx, types.NamespacedName{Namespace: j.Rollout.Namespace, Name: j.Rollout.Name}, ro); err != nil {
			return err
		}
		if string(ro.UID) != j.Rollout.UID {
			return apierrors.NewNotFound(v1beta1.GroupVersion.WithResource("rollouts").GroupResource(), j.Rollout.Name)
		}
		before := ro.DeepCopy()
		notified := ParseNotified(ro.Annotations[NotifiedAnnotation])
		notified[j.Key] = Record{At: n.now().UTC().Truncate(time.Second), Result: r}
		if ro.Annotations == nil {
			ro.Annotations = map[string]string{}
		}
		ro.Annotations[NotifiedAnnotation] = notified.String()
		return n.Client.Patch(ctx, ro, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return ro, err
}

func (n *Notifier) now() time.Time {
	if n.Now == nil {
		return time.Now()
	}
	return n.Now()
}

func (n *Notifier) maxAge() time.Duration {
	if n.MaxAge <= 0 {
		return time.Hour
	}
	return n.MaxAge
}

func (n *Notifier) isHandled(uid types.UID, key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.handled[uid][key]
}

func (n *Notifier) markHandled(uid types.UID, key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handled == nil {
		n.handled = map[types.UID]map[string]bool{}
	}
	if n.handled[uid] == nil {
		n.handled[uid] = map[string]bool{}
	}
	n.handled[uid][key] = true
}

// keepOnly forgets the handled keys of events the status no longer shows.
func (n *Notifier) keepOnly(uid types.UID, current map[string]bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.handled[uid] {
		if !current[k] {
			delete(n.handled[uid], k)
		}
	}
}

func (n *Notifier) startFlight(key string, uid types.UID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.inflight == nil {
		n.inflight = map[string]bool{}
	}
	k := string(uid) + "/" + key
	if n.inflight[k] {
		return false
	}
	n.inflight[k] = true
	return true
}

func (n *Notifier) endFlight(key string, uid types.UID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.inflight, string(uid)+"/"+key)
}

func uniq(a, b string) []string {
	if a == b || b == "" {
		return []string{a}
	}
	return []string{a, b}
}

// Record is what NotifiedAnnotation keeps of one message.
type Record struct {
	At     time.Time `json:"at"`
	Result Result    `json:"result"`
}

// Notified is NotifiedAnnotation's content: record key to Record.
type Notified map[string]Record

// maxRecords bounds the annotation: the newest are kept. Two events at a
// time (a hold, the last release) to a few destinations each fit well.
const maxRecords = 32

// ParseNotified reads the annotation; an unreadable one reads as empty
// (messages may then be sent again, never lost).
func ParseNotified(s string) Notified {
	out := Notified{}
	if s != "" {
		_ = json.Unmarshal([]byte(s), &out)
	}
	return out
}

// String is the annotation's value, the newest maxRecords records.
func (n Notified) String() string {
	if len(n) > maxRecords {
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return n[keys[i]].At.After(n[keys[j]].At) })
		for _, k := range keys[maxRecords:] {
			delete(n, k)
		}
	}
	b, _ := json.Marshal(n)
	return string(b)
}
