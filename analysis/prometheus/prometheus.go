// Package prometheus is the Prometheus metric provider of analysis: it
// runs a metric's rendered query, instant or over a range, with the
// metric's address, timeout, headers and credentials, on client_golang's
// api/prometheus/v1 client, and turns the answer into a measure.Value.
//
// Its errors say what could not be done and where, e.g. "Prometheus at
// http://prometheus:9090 could not be reached: ...", because they end up
// in the AnalysisRun's and the Rollout's status.
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/analysis/measure"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// DefaultTimeout bounds one query when the metric sets no timeout.
const DefaultTimeout = 30 * time.Second

// Request is one query to run.
type Request struct {
	// Namespace holds the Secret named by Provider.Authentication.
	Namespace string
	// Provider is the metric's provider spec: address, timeout, headers,
	// credentials. Its Query and Range are ignored; see Query and Range.
	Provider *v1alpha1.PrometheusProvider
	// Query is the rendered PromQL.
	Query string
	// Range, when set, makes a range query over [Time−Lookback, Time].
	Range *Window
	// Time is the evaluation time (the end of the range).
	Time time.Time
}

// Window is the span and resolution of a range query.
type Window struct {
	Lookback, Step time.Duration
}

// Provider runs queries. It is safe for concurrent use and reuses HTTP
// connections per address and credentials.
type Provider struct {
	// DefaultAddress is used by metrics that name no address
	// (sluice-controller's --prometheus-address).
	DefaultAddress string
	// DefaultAuthentication, when set, authenticates the queries that go
	// to DefaultAddress: those of metrics that name neither an address
	// nor authentication. Its Secret is in DefaultAuthNamespace
	// (sluice-controller's --prometheus-auth-* flags).
	DefaultAuthentication *v1alpha1.PrometheusAuthentication
	DefaultAuthNamespace  string
	// Secrets reads the credentials Secrets; only get is needed.
	Secrets client.Reader
	// Via, when set, reaches some addresses another way: for an address
	// it returns the URL to send the queries to instead and the transport
	// to send them with, or ok=false to reach the address itself. The
	// kubectl plugin reaches a Prometheus Service in the cluster through
	// the API server's proxy so. Errors still name the address.
	Via func(address string) (url string, transport http.RoundTripper, ok bool)

	clients clientCache
}

// Address is the Prometheus r goes to: the metric's, else DefaultAddress.
func (p *Provider) Address(r Request) string {
	if r.Provider.Address != "" {
		return r.Provider.Address
	}
	return p.DefaultAddress
}

// api is the client for r's Prometheus, with its credentials, and the
// query timeout.
func (p *Provider) api(ctx context.Context, r Request) (_ promv1.API, address string, timeout time.Duration, _ error) {
	address = p.Address(r)
	if address == "" {
		return nil, "", 0, errors.New("no Prometheus address: set provider.prometheus.address or start sluice-controller with --prometheus-address")
	}
	if u, err := url.Parse(address); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, address, 0, fmt.Errorf("Prometheus address %q is not an http:// or https:// URL", address)
	}
	namespace, spec := r.Namespace, r.Provider
	if spec.Address == "" && spec.Authentication == nil && p.DefaultAuthentication != nil {
		withDefault := *spec
		withDefault.Authentication = p.DefaultAuthentication
		namespace, spec = p.DefaultAuthNamespace, &withDefault
	}
	cfg, err := p.httpConfig(ctx, namespace, spec)
	if err != nil {
		return nil, address, 0, fmt.Errorf("Prometheus at %s: %w", address, err)
	}
	target, base := address, http.RoundTripper(nil)
	if p.Via != nil {
		if u, rt, ok := p.Via(address); ok {
			target, base = u, rt
		}
	}
	c, err := p.clients.get(target, cfg, base)
	if err != nil {
		return nil, address, 0, fmt.Errorf("Prometheus at %s: %w", address, err)
	}
	timeout = DefaultTimeout
	if r.Provider.Timeout != nil && r.Provider.Timeout.Duration > 0 {
		timeout = r.Provider.Timeout.Duration
	}
	return promv1.NewAPI(c), address, timeout, nil
}

// Query runs r and returns its result: a scalar as one sample, a vector's
// samples, a range query's matrix flattened series after series (a matrix
// answering an instant query is an error). Prometheus' warnings
// are kept in the value, also beside an error about an answer it gave.
func (p *Provider) Query(ctx context.Context, r Request) (measure.Value, error) {
	api, address, timeout, err := p.api(ctx, r)
	if err != nil {
		return measure.Value{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		v        model.Value
		warnings promv1.Warnings
	)
	if r.Range != nil {
		v, warnings, _, err = api.QueryRange(ctx, r.Query,
			promv1.Range{Start: r.Time.Add(-r.Range.Lookback), End: r.Time, Step: r.Range.Step}, promv1.WithTimeout(timeout))
	} else {
		v, warnings, _, err = api.Query(ctx, r.Query, r.Time, promv1.WithTimeout(timeout))
	}
	if err != nil {
		return measure.Value{}, explain(ctx, address, timeout, err)
	}
	out, err := convert(v)
	if err != nil {
		return measure.Value{Warnings: warnings}, fmt.Errorf("Prometheus at %s: %w", address, err)
	}
	if r.Range == nil && out.Kind == measure.Matrix {
		// An instant query answers a scalar or a vector; samples over
		// time are asked for with range (or aggregated in the query).
		return measure.Value{Warnings: warnings}, fmt.Errorf("Prometheus at %s answered the instant query with a range vector (matrix): aggregate it in the query (e.g. max_over_time) or set range", address)
	}
	out.Warnings = warnings
	return out, nil
}

// CountSeries counts the series that selector (a series selector such as
// up{job="a"}) selected in Prometheus between r.Time−lookback and r.Time,
// with r's address and credentials (r.Query is not used): zero means a
// query reading it can have no data.
func (p *Provider) CountSeries(ctx context.Context, r Request, selector string, lookback time.Duration) (int, error) {
	api, address, timeout, err := p.api(ctx, r)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	series, _, _, err := api.Series(ctx, []string{selector}, r.Time.Add(-lookback), r.Time)
	if err != nil {
		return 0, explain(ctx, address, timeout, err)
	}
	return len(series), nil
}

// explain words a failed query: Prometheus answered with an error, did not
// answer in time, or could not be reached at all.
func explain(ctx context.Context, address string, timeout time.Duration, err error) error {
	var apiErr *promv1.Error
	switch {
	case errors.As(err, &apiErr):
		msg := string(apiErr.Type) + ": " + apiErr.Msg
		if apiErr.Detail != "" && len(apiErr.Detail) < 200 {
			msg += " (" + apiErr.Detail + ")"
		}
		return fmt.Errorf("Prometheus at %s rejected the query: %s", address, msg)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("Prometheus at %s did not answer within %s", address, timeout)
	}
	return fmt.Errorf("Prometheus at %s could not be reached: %w", address, err)
}

// convert turns a query result into a measure.Value.
func convert(v model.Value) (measure.Value, error) {
	switch r := v.(type) {
	case *model.Scalar:
		return measure.ScalarValue(float64(r.Value)), nil
	case model.Vector:
		out := measure.Value{Kind: measure.Vector, Samples: make([]float64, 0, len(r))}
		for _, s := range r {
			out.Samples = append(out.Samples, float64(s.Value))
		}
		return out, nil
	case model.Matrix:
		out := measure.Value{Kind: measure.Matrix}
		for _, series := range r {
			for _, s := range series.Values {
				out.Samples = append(out.Samples, float64(s.Value))
			}
		}
		return out, nil
	case nil:
		return measure.Value{Kind: measure.Vector}, nil
	}
	return measure.Value{}, fmt.Errorf("the query returned a %s, not a number or a list of numbers", v.Type())
}
