package notify

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts notifications by how they ended.
type Metrics struct {
	total *prometheus.CounterVec
	queue prometheus.Gauge
}

// NewMetrics registers sluice_notifications_total{trigger,service,result}
// (result sent, failed after its retries, or dropped on a full queue) and
// sluice_notifications_queued with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_notifications_total",
			Help: "Notifications by trigger, service and result: sent, failed (after its retries) or dropped (queue full).",
		}, []string{"trigger", "service", "result"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_notifications_queued",
			Help: "Notifications waiting for delivery or a retry.",
		}),
	}
	for _, c := range []prometheus.Collector{m.total, m.queue} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(t Trigger, service string, r Result) {
	if m != nil {
		m.total.WithLabelValues(string(t), service, string(r)).Inc()
	}
}

func (m *Metrics) queued(n int) {
	if m != nil {
		m.queue.Set(float64(n))
	}
}
