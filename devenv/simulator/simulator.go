// Package simulator serves application metrics for simulated pods (kwok
// runs no container): for every running pod of the cluster it exposes
// request counters and latency histograms on a Prometheus /metrics
// endpoint, growing over time by the pod's scenario (see Scenario):
//
//	http_requests_total{namespace,pod,pod_template_hash,code}
//	http_request_duration_seconds{namespace,pod,pod_template_hash} (histogram)
//
// Traffic is a pure function of the pod's UID and the whole seconds since
// it started, so two scrapes at the same time see the same numbers and a
// test can predict them; Prometheus scrapes it like any target.
package simulator

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options tune the simulation.
type Options struct {
	// Namespace limits the pods simulated; empty means every namespace.
	Namespace string
	// RequestsPerSecond per pod (default defaultRPS; each second varies by ±20%).
	RequestsPerSecond int
	// FlapPeriod is how long a flapping pod stays healthy, then erroring
	// (default 20s).
	FlapPeriod time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Integrations also serves the series of the exporters people already
	// run (integrations.go): ingress-nginx, Istio, Envoy Gateway,
	// OpenTelemetry's HTTP server metrics and kube-state-metrics.
	Integrations bool
	// Routes, with Integrations, lists the HTTPRoutes whose Envoy Gateway
	// clusters are simulated; nil serves none.
	Routes client.Reader
}

// Buckets are the latency histogram's upper bounds, in seconds.
var Buckets = prometheus.DefBuckets

var (
	requestsDesc = prometheus.NewDesc("http_requests_total", "Requests served by the simulated pod, by status code.",
		[]string{"namespace", "pod", "pod_template_hash", "code"}, nil)
	durationDesc = prometheus.NewDesc("http_request_duration_seconds", "Latency of the simulated pod's requests.",
		[]string{"namespace", "pod", "pod_template_hash"}, nil)
)

// Simulator is the metrics of the simulated pods.
type Simulator struct {
	o       Options
	pods    cache.SharedIndexInformer
	factory informers.SharedInformerFactory
	reg     *prometheus.Registry

	// services and ingresses, with Integrations: what routes to which pods.
	services, ingresses cache.SharedIndexInformer

	mu    sync.Mutex
	state map[types.UID]*podState
}

// New makes a simulator of the pods client sees. Call Start before
// serving.
func New(client kubernetes.Interface, o Options) *Simulator {
	if o.RequestsPerSecond <= 0 {
		o.RequestsPerSecond = defaultRPS
	}
	if o.FlapPeriod <= 0 {
		o.FlapPeriod = 20 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(o.Namespace))
	s := &Simulator{o: o, factory: f, pods: f.Core().V1().Pods().Informer(), state: map[types.UID]*podState{}}
	if o.Integrations {
		s.services = f.Core().V1().Services().Informer()
		s.ingresses = f.Networking().V1().Ingresses().Informer()
	}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(s)
	return s
}

// Start watches the pods until ctx ends and returns once the first list
// is in.
func (s *Simulator) Start(ctx context.Context) error {
	s.factory.Start(ctx.Done())
	for typ, ok := range s.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("simulator: %v informer did not sync", typ)
		}
	}
	return nil
}

// Handler serves /metrics.
func (s *Simulator) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// Serve serves /metrics on addr (e.g. "127.0.0.1:0") until ctx ends and
// returns the address it listens on.
func (s *Simulator) Serve(ctx context.Context, addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("simulator:", err)
		}
	}()
	return l.Addr().String(), nil
}

// Describe sends nothing: the series depend on the pods, so the collector
// is unchecked.
func (s *Simulator) Describe(chan<- *prometheus.Desc) {}

// Collect advances every running pod to now and sends its series.
func (s *Simulator) Collect(ch chan<- prometheus.Metric) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[types.UID]bool{}
	var live []livePod
	for _, obj := range s.pods.GetStore().List() {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
			continue
		}
		sc := scheduleOf(pod)
		if sc.at(now) == Silent {
			continue
		}
		seen[pod.UID] = true
		st := s.state[pod.UID]
		if st == nil {
			st = newPodState(pod)
			s.state[pod.UID] = st
		}
		st.advance(now, sc, s.o)
		hash := pod.Labels["pod-template-hash"]
		if hash == "" {
			hash = pod.Labels["controller-revision-hash"]
		}
		for _, code := range []string{"200", "500"} {
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, st.requests[code], pod.Namespace, pod.Name, hash, code)
		}
		buckets := make(map[float64]uint64, len(Buckets))
		for i, b := range Buckets {
			buckets[b] = st.buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(durationDesc, st.count, st.sum, buckets, pod.Namespace, pod.Name, hash)
		live = append(live, livePod{pod: pod, st: st, hash: hash})
	}
	if s.o.Integrations {
		s.collectIntegrations(ch, live)
	}
	for uid := range s.state {
		if !seen[uid] {
			delete(s.state, uid)
		}
	}
}

// defaultRPS is high enough that a few seconds of a 20% error rate
// measure close to 20%.
const defaultRPS = 50

// maxBackfill bounds the history simulated at once.
const maxBackfill = 10 * time.Minute

// podState is a pod's counters up to a whole second of its life.
type podState struct {
	start    time.Time
	seed     uint64
	seconds  int64 // simulated so far
	requests map[string]float64
	buckets  []uint64 // cumulative, as Prometheus wants
	count    uint64
	sum      float64
	// byCode is the latency by status code, at finer bounds (fineBounds)
	// than Buckets: what the exporters of integrations.go serve.
	byCode map[string]*fineHist
}

func newPodState(pod *corev1.Pod) *podState {
	start := pod.CreationTimestamp.Time
	if pod.Status.StartTime != nil {
		start = pod.Status.StartTime.Time
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(pod.UID))
	return &podState{start: start, seed: h.Sum64(), requests: map[string]float64{"200": 0, "500": 0}, buckets: make([]uint64, len(Buckets)),
		byCode: map[string]*fineHist{"200": newFineHist(), "500": newFineHist()}}
}

// advance simulates every whole second of the pod's life up to now, each
// with the scenario sc has when it begins. Each second draws from its own
// seeded generator, so the result does not depend on when or how often
// the pod is scraped.
func (st *podState) advance(now time.Time, sched schedule, o Options) {
	target := int64(now.Sub(st.start) / time.Second)
	// A pod first seen long after it started gets only recent history:
	// the counters start later, which a rate() does not notice.
	st.seconds = max(st.seconds, target-int64(maxBackfill/time.Second))
	for ; st.seconds < target; st.seconds++ {
		sc := sched.at(st.start.Add(time.Duration(st.seconds) * time.Second))
		if sc == Idle {
			continue
		}
		r := rand.New(rand.NewPCG(st.seed, uint64(st.seconds)))
		behaviour := sc
		if sc == Flapping {
			behaviour = Healthy
			if (time.Duration(st.seconds)*time.Second/o.FlapPeriod)%2 == 1 {
				behaviour = Errors
			}
		}
		spread := max(o.RequestsPerSecond/5, 0)
		n := o.RequestsPerSecond - spread + r.IntN(2*spread+1)
		for range n {
			code := "200"
			if behaviour == Errors && r.Float64() < 0.2 {
				code = "500"
			}
			st.requests[code]++
			latency := 0.05 * math.Exp(0.3*r.NormFloat64())
			if behaviour == Slow {
				latency *= 3
			}
			st.observe(latency)
			st.byCode[code].observe(latency)
		}
	}
}

func (st *podState) observe(v float64) {
	st.count++
	st.sum += v
	for i, b := range Buckets {
		if v <= b {
			st.buckets[i]++
		}
	}
}
