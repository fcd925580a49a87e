package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/sluicehq/sluice/analysis/prometheus"
	"github.com/sluicehq/sluice/analysis/query"
	"github.com/sluicehq/sluice/analysis/run"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// prober reaches Prometheus for plan: *prometheus.Provider.
type prober interface {
	run.Querier
	Address(r prometheus.Request) string
	CountSeries(ctx context.Context, r prometheus.Request, selector string, lookback time.Duration) (int, error)
}

// seriesLookback is how far back plan looks for a selector's series.
const seriesLookback = time.Hour

// metricView is one metric of a plan: rendered, measured once now, and
// each of its series selectors checked.
type metricView struct {
	metric      analysisv1alpha1.Metric
	address     string
	measurement analysisv1alpha1.Measurement
	// measured is false when the metric could not be measured at all
	// (no address).
	measured  bool
	selectors []selectorView
	// credentialsProxied: the metric has Prometheus credentials and its
	// address went through the API server's service proxy, which does
	// not pass them on (the API server takes the Authorization header and
	// the TLS connection for itself).
	credentialsProxied bool
}

// selectorView is one series selector of a metric's query(s).
type selectorView struct {
	selector string
	// series selected in the last seriesLookback; -1 when not counted.
	series int
	err    error
	// With no series: nameSeries counts the metric name's alone (-1 not
	// counted), and lonely lists the matchers that select nothing even
	// with the name alone: the ones to blame.
	nameSeries int
	lonely     []string
}

// checkMetric measures m once, as its AnalysisRun would, and counts the
// series of each of its selectors. credentialsProxied says whether a
// metric's credentials would go through the API server's service proxy
// (nil: none would).
func checkMetric(ctx context.Context, p prober, credentialsProxied func(*analysisv1alpha1.PrometheusProvider, string) bool, namespace string, m analysisv1alpha1.Metric, now time.Time) metricView {
	mv := metricView{metric: m}
	prom := m.Provider.Prometheus
	if prom == nil {
		return mv
	}
	req := prometheus.Request{Namespace: namespace, Provider: prom, Time: now}
	if mv.address = p.Address(req); mv.address == "" {
		return mv
	}
	mv.measured = true
	mv.credentialsProxied = credentialsProxied != nil && credentialsProxied(prom, mv.address)
	mv.measurement = run.Measure(ctx, p, func() time.Time { return now }, namespace, &m)
	queries := []string{prom.Query}
	if m.Baseline != nil {
		queries = append(queries, m.Baseline.Query)
	}
	seen := map[string]bool{}
	for _, q := range queries {
		sels, err := query.Selectors(q)
		if err != nil {
			continue // the measurement says why the query is wrong
		}
		for _, s := range sels {
			if seen[s.String()] {
				continue
			}
			seen[s.String()] = true
			mv.selectors = append(mv.selectors, checkSelector(ctx, p, req, s))
		}
	}
	return mv
}

// checkSelector counts a selector's series; when it has none, the metric
// name's alone and each matcher's with the name, to tell a metric that is
// not there from labels that do not match.
func checkSelector(ctx context.Context, p prober, req prometheus.Request, s query.Selector) selectorView {
	sv := selectorView{selector: s.String(), series: -1, nameSeries: -1}
	count := func(sel query.Selector) (int, error) {
		if sel.String() == "" {
			return -1, nil
		}
		return p.CountSeries(ctx, req, sel.String(), seriesLookback)
	}
	sv.series, sv.err = count(s)
	if sv.err != nil || sv.series != 0 || s.Metric == "" {
		return sv
	}
	if sv.nameSeries, sv.err = count(s.WithOnly()); sv.err != nil || sv.nameSeries <= 0 {
		return sv
	}
	for _, m := range s.Matchers {
		n, err := count(s.WithOnly(m))
		if err != nil {
			sv.err = err
			return sv
		}
		if n == 0 {
			sv.lonely = append(sv.lonely, m.String())
		}
	}
	return sv
}

// clusterService reads an address whose host is a Service's cluster name
// (NAME.NAMESPACE, NAME.NAMESPACE.svc, NAME.NAMESPACE.svc.<cluster domain>):
// its namespace, name and port ("https:" first for TLS).
func clusterService(address string) (namespace, name, port string, ok bool) {
	u, err := url.Parse(address)
	if err != nil || u.Host == "" || net.ParseIP(u.Hostname()) != nil {
		return "", "", "", false
	}
	parts := strings.Split(u.Hostname(), ".")
	switch {
	case len(parts) == 2:
	case len(parts) >= 3 && parts[2] == "svc":
	default:
		return "", "", "", false
	}
	port = u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if u.Scheme == "https" {
		port = "https:" + parts[0] + ":" + port
	} else {
		port = parts[0] + ":" + port
	}
	return parts[1], parts[0], port, true
}

// proxiesCredentials says which metrics have credentials (their own, or
// the manager's default for metrics that name no address) and an address
// that serviceProxy sends through the API server: a cluster Service's.
func proxiesCredentials(on, defaultAuth bool) func(*analysisv1alpha1.PrometheusProvider, string) bool {
	if !on {
		return nil
	}
	return func(spec *analysisv1alpha1.PrometheusProvider, address string) bool {
		_, _, _, cluster := clusterService(address)
		return cluster && (spec.Authentication != nil || (spec.Address == "" && defaultAuth))
	}
}

// serviceProxy sends the queries for a cluster Service's address through
// the API server's service proxy, with the kubeconfig's credentials (one
// transport for all, so that the provider's clients are reused).
func serviceProxy(cfg *rest.Config) func(string) (string, http.RoundTripper, bool) {
	rt, rtErr := rest.TransportFor(cfg)
	host := strings.TrimSuffix(cfg.Host, "/")
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	return func(address string) (string, http.RoundTripper, bool) {
		ns, _, svcPort, ok := clusterService(address)
		if !ok || rtErr != nil {
			return "", nil, false
		}
		u, err := url.Parse(address)
		if err != nil {
			return "", nil, false
		}
		return fmt.Sprintf("%s/api/v1/namespaces/%s/services/%s/proxy%s", host, ns, svcPort, strings.TrimSuffix(u.Path, "/")), rt, true
	}
}
