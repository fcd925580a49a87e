package app

import (
	"errors"
	"flag"
	"net/http"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluicehq/sluice/notify"
)

// notifyOptions are the --notifications-* flags.
type notifyOptions struct {
	enabled    bool
	workers    int
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	timeout    time.Duration
	maxAge     time.Duration
	capacity   int
}

func (n *notifyOptions) bindFlags(fs *flag.FlagSet) {
	fs.BoolVar(&n.enabled, "notifications", false, "send notifications of releases to the webhooks and Slack that sluice-notifications-cm configures (docs/notifications.md)")
	fs.IntVar(&n.workers, "notifications-workers", 2, "how many notifications are delivered at once")
	fs.IntVar(&n.attempts, "notifications-attempts", 5, "attempts to deliver one notification before it is given up (an Event and sluice_notifications_total{result=failed} say so)")
	fs.DurationVar(&n.backoff, "notifications-backoff", time.Second, "delay before the first retry of a notification; it doubles at each retry")
	fs.DurationVar(&n.maxBackoff, "notifications-max-backoff", time.Minute, "longest delay between two attempts of a notification")
	fs.DurationVar(&n.timeout, "notifications-timeout", 10*time.Second, "time limit of one delivery attempt (a service's timeout overrides it)")
	fs.DurationVar(&n.maxAge, "notifications-max-age", time.Hour, "events older than this when first seen are not sent (e.g. when notifications are turned on)")
	fs.IntVar(&n.capacity, "notifications-queue-capacity", 1000, "most notifications waiting for delivery; more are dropped (and counted)")
}

func (n *notifyOptions) validate() error {
	switch {
	case n.workers < 1 || n.attempts < 1 || n.capacity < 1:
		return errors.New("--notifications-workers, --notifications-attempts and --notifications-queue-capacity must be at least 1")
	case n.backoff <= 0 || n.maxBackoff < n.backoff:
		return errors.New("--notifications-backoff must be positive and at most --notifications-max-backoff")
	case n.timeout <= 0 || n.maxAge <= 0:
		return errors.New("--notifications-timeout and --notifications-max-age must be positive")
	}
	return nil
}

// setupNotifier registers the notifier when --notifications is set.
func setupNotifier(mgr ctrl.Manager, o options) error {
	n := o.notifications
	if !n.enabled {
		return nil
	}
	m, err := notify.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	return (&notify.Notifier{
		Client: mgr.GetClient(), Live: mgr.GetAPIReader(), Namespace: o.namespace,
		Queue: &notify.Queue{
			Workers: n.workers, Capacity: n.capacity, Attempts: n.attempts, Backoff: n.backoff, MaxBackoff: n.maxBackoff,
			HTTP: &http.Client{Timeout: n.timeout},
		},
		Recorder: mgr.GetEventRecorder("sluice-notify"), Metrics: m, Now: time.Now, MaxAge: n.maxAge,
	}).SetupWithManager(mgr)
}
