//go:build e2e

package bench_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// samples is a distribution of durations.
type samples []time.Duration

// quantile is the nearest-rank q-quantile (0 < q <= 1): with few samples
// the p99 is the largest.
func (s samples) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func (s samples) String() string {
	if len(s) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p99 %s  (n=%d, min %s, max %s)",
		ms(s.quantile(0.5)), ms(s.quantile(0.99)), len(s), ms(s.quantile(0)), ms(s.quantile(1)))
}

func ms(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// report adds a distribution's p50 and p99 to the benchmark's line.
func (s samples) report(b *testing.B, name string) {
	if len(s) == 0 {
		return
	}
	b.ReportMetric(float64(s.quantile(0.5))/float64(time.Millisecond), name+"-p50-ms")
	b.ReportMetric(float64(s.quantile(0.99))/float64(time.Millisecond), name+"-p99-ms")
}

// writeMethods are the HTTP methods that change something.
var writeMethods = []string{"POST", "PUT", "PATCH", "DELETE"}

// requests is the manager's client-go request counter
// (rest_client_requests_total, registered by controller-runtime) by
// method, and for writes that were not 2xx.
type requests struct {
	byMethod map[string]float64
	failed   map[string]float64 // writes answered with a non-2xx code, by code
}

func newRequests() requests {
	return requests{byMethod: map[string]float64{}, failed: map[string]float64{}}
}

// scrapeRequests reads the manager's /metrics.
func scrapeRequests() (requests, error) {
	r := newRequests()
	families, err := env.Manager.MetricFamilies(context.Background())
	if err != nil {
		return r, err
	}
	f := families["rest_client_requests_total"]
	if f == nil {
		return r, fmt.Errorf("%s has no rest_client_requests_total", env.Manager.MetricsURL())
	}
	for _, m := range f.GetMetric() {
		var method, code string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "method":
				method = l.GetValue()
			case "code":
				code = l.GetValue()
			}
		}
		v := m.GetCounter().GetValue()
		r.byMethod[method] += v
		if slices.Contains(writeMethods, method) && !strings.HasPrefix(code, "2") {
			r.failed[code] += v
		}
	}
	return r, nil
}

// sub is r minus before.
func (r requests) sub(before requests) requests {
	out := newRequests()
	for m, v := range r.byMethod {
		out.byMethod[m] = v - before.byMethod[m]
	}
	for c, v := range r.failed {
		out.failed[c] = v - before.failed[c]
	}
	return out
}

func (r requests) add(o requests) requests {
	out := newRequests()
	for _, x := range []requests{r, o} {
		for m, v := range x.byMethod {
			out.byMethod[m] += v
		}
		for c, v := range x.failed {
			out.failed[c] += v
		}
	}
	return out
}

func (r requests) writes() float64 {
	n := 0.0
	for _, m := range writeMethods {
		n += r.byMethod[m]
	}
	return n
}

// perRelease describes the writes of n releases, per release.
func (r requests) perRelease(n int) string {
	if n == 0 {
		return "no release"
	}
	var parts []string
	methods := slices.Clone(writeMethods)
	sort.Strings(methods)
	for _, m := range methods {
		parts = append(parts, fmt.Sprintf("%s %.1f", m, r.byMethod[m]/float64(n)))
	}
	var failed []string
	for c, v := range r.failed {
		if v > 0 {
			failed = append(failed, fmt.Sprintf("%s: %.1f", c, v/float64(n)))
		}
	}
	sort.Strings(failed)
	if len(failed) == 0 {
		failed = []string{"none"}
	}
	return fmt.Sprintf("%.1f (%s), of which answered with an error %s; reads (GET) %.1f",
		r.writes()/float64(n), strings.Join(parts, ", "), strings.Join(failed, ", "), r.byMethod["GET"]/float64(n))
}

// machine says what the numbers were measured on: they depend on it and
// on whatever else runs there.
func machine() string {
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("   measured on %d CPUs, load average %s: absolute numbers are noisy on a shared machine; benchmarks report, never fail", runtime.NumCPU(), load)
}
