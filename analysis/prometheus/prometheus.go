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

	clients clientCache
}

// Query runs r and returns its result: a scalar as one sample, a vector's
// samples, a matrix flattened series after series. Prometheus' warnings
// are kept in the value.
func (p *Provider) Query(ctx context.Context, r Request) (measure.Value, error) {
	address := r.Provider.Address
	if address == "" {
		address = p.DefaultAddress
	}
	if address == "" {
		return measure.Value{}, errors.New("no Prometheus address: set provider.prometheus.address or start sluice-controller with --prometheus-address")
	}
	if u, err := url.Parse(address); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return measure.Value{}, fmt.Errorf("Prometheus address %q is not an http:// or https:// URL", address)
	}
	namespace, spec := r.Namespace, r.Provider
	if spec.Address == "" && spec.Authentication == nil && p.DefaultAuthentication != nil {
		withDefault := *spec
		withDefault.Authentication = p.DefaultAuthentication
		namespace, spec = p.DefaultAuthNamespace, &withDefault
	}
	cfg, err := p.httpConfig(ctx, namespace, spec)
	if err != nil {
		return measure.Value{}, fmt.Errorf("Prometheus at %s: %w", address, err)
	}
	c, err := p.clients.get(address, cfg)
	if err != nil {
		return measure.Value{}, fmt.Errorf("Prometheus at %s: %w", address, err)
	}

	timeout := DefaultTimeout
	if r.Provider.Timeout != nil && r.Provider.Timeout.Duration > 0 {
		timeout = r.Provider.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	api := promv1.NewAPI(c)
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
		return measure.Value{}, fmt.Errorf("Prometheus at %s: %w", address, err)
	}
	out.Warnings = warnings
	return out, nil
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
