package prometheus

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// headerTransport marks the requests that went through it.
type headerTransport struct{}

func (headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Through", "proxy")
	return http.DefaultTransport.RoundTrip(r)
}

// Via sends the queries of one address to another URL with its own
// transport (as the API server's service proxy is reached), and errors
// still name the address the metric gave.
func TestVia(t *testing.T) {
	const proxyPath = "/api/v1/namespaces/monitoring/services/prometheus:9090/proxy"
	var gotPath, gotHeader string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotHeader = r.URL.Path, r.Header.Get("X-Through")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.25"]}]}}`))
	}))
	defer srv.Close()
	const inCluster = "http://prometheus.monitoring:9090"
	p := &Provider{DefaultAddress: inCluster, Via: func(address string) (string, http.RoundTripper, bool) {
		if address != inCluster {
			return "", nil, false
		}
		return srv.URL + proxyPath, headerTransport{}, true
	}}
	v, err := p.Query(t.Context(), Request{Provider: &v1alpha1.PrometheusProvider{}, Query: "up", Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if v.String() != "[0.25]" || gotPath != proxyPath+"/api/v1/query" || gotHeader != "proxy" {
		t.Errorf("got %s at %s (through %q), want [0.25] at %s/api/v1/query through the proxy's transport", v, gotPath, gotHeader, proxyPath)
	}

	// Another address is reached directly.
	closed := closedPort(t)
	_, err = p.Query(t.Context(), Request{Provider: &v1alpha1.PrometheusProvider{Address: closed}, Query: "up", Time: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "Prometheus at "+closed+" could not be reached") {
		t.Errorf("a metric's own address: %v", err)
	}
	// A failure through the proxy names the metric's address.
	srv.Close()
	_, err = p.Query(t.Context(), Request{Provider: &v1alpha1.PrometheusProvider{}, Query: "up", Time: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "Prometheus at "+inCluster+" could not be reached") {
		t.Errorf("through the proxy, down: %v", err)
	}
}

func TestCountSeries(t *testing.T) {
	var match, start, end string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/series" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		match, start, end = r.Form.Get("match[]"), r.Form.Get("start"), r.Form.Get("end")
		data := []map[string]string{}
		if strings.Contains(match, `code="200"`) {
			data = append(data, map[string]string{"__name__": "http_requests_total", "code": "200"}, map[string]string{"__name__": "http_requests_total", "code": "200", "pod": "b"})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
	}))
	defer srv.Close()
	p := &Provider{DefaultAddress: srv.URL}
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	r := Request{Provider: &v1alpha1.PrometheusProvider{}, Time: at}
	n, err := p.CountSeries(t.Context(), r, `http_requests_total{code="200"}`, time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("got %d, %v; want 2 series", n, err)
	}
	if match != `http_requests_total{code="200"}` || start != fmt.Sprint(at.Add(-time.Hour).Unix()) || end != fmt.Sprint(at.Unix()) {
		t.Errorf("asked match[]=%s from %s to %s, want the selector over the hour before %s", match, start, end, at)
	}
	if n, err := p.CountSeries(t.Context(), r, `http_requests_total{code="500"}`, time.Hour); err != nil || n != 0 {
		t.Errorf("got %d, %v; want 0 series", n, err)
	}
}
