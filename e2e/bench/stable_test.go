//go:build e2e

package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/analysis/run"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/simulator"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/traffic/ingress"
)

// scrapeInterval is how often the framework's Prometheus scrapes the
// simulator (framework.StartPrometheusFor).
const scrapeInterval = time.Second

// switchLead is how far ahead of the switch the canary pods are told: the
// simulator must see the annotation before it plays the switched second.
const switchLead = 2 * time.Second

// irateTemplate is the docs' error-rate metric measured on the last two
// scrapes (irate) instead of a 10s average, so that it goes bad one scrape
// after the pods do: what is left is the pipeline, scrape + measurement +
// reaction.
const irateTemplate = `
apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
  - name: error-rate
    initialDelay: 4s
    interval: 1s
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        query: |
          sum(irate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}",code=~"5.."}[5s]))
            / sum(irate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}"}[5s]))
`

// BenchmarkTimeToStable releases a healthy version with the guide's
// Example 1 (docs/examples) under a background analysis, holds it at step
// 1 (header-routed to one canary pod) and, once the analysis has passed
// twice, turns the canary pod bad (20% errors) at a known second. It
// measures from that second to the canary Ingress gone (traffic all on
// stable), as a multiple of scrape interval + analysis interval.
func BenchmarkTimeToStable(b *testing.B) {
	b.Run("irate", func(b *testing.B) {
		timeToStable(b, "the error rate of the last two scrapes (irate)", []byte(irateTemplate))
	})
	b.Run("docs-rate-10s", func(b *testing.B) {
		timeToStable(b, "docs/examples' error rate over 10s (rate)", docsTemplate(b))
	})
}

// docsTemplate is docs/examples' error-rate template without its count,
// so that it measures for as long as the release runs.
func docsTemplate(b *testing.B) []byte {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(mustRead(b, filepath.Join(framework.RepoRoot(), "docs", "examples", "error-rate-template.yaml")), &u.Object); err != nil {
		b.Fatal(err)
	}
	metrics, _, _ := unstructured.NestedSlice(u.Object, "spec", "metrics")
	for _, m := range metrics {
		delete(m.(map[string]any), "count")
	}
	if err := unstructured.SetNestedSlice(u.Object, metrics, "spec", "metrics"); err != nil {
		b.Fatal(err)
	}
	out, err := yaml.Marshal(u.Object)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// example1Background is docs/examples' Example 1 with the template as a
// background analysis instead of one per step, and a manual pause at
// step 1, so that the release stays there while the analysis runs.
func example1Background(b *testing.B) []byte {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(mustRead(b, filepath.Join(framework.RepoRoot(), "docs", "examples", "example1-analysis-rollout.yaml")), &u.Object); err != nil {
		b.Fatal(err)
	}
	steps, _, _ := unstructured.NestedSlice(u.Object, "spec", "strategy", "canary", "steps")
	for i, s := range steps {
		delete(s.(map[string]any), "analysis")
		if i == 0 {
			s.(map[string]any)["pause"] = map[string]any{}
		}
	}
	must(b, unstructured.SetNestedSlice(u.Object, steps, "spec", "strategy", "canary", "steps"))
	must(b, unstructured.SetNestedField(u.Object, map[string]any{"templates": []any{map[string]any{"templateName": "error-rate"}}}, "spec", "strategy", "analysis"))
	out, err := yaml.Marshal(u.Object)
	must(b, err)
	return out
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

func timeToStable(b *testing.B, about string, template []byte) {
	f := newFixture(b, &v1beta1.RolloutList{}, &analysisv1alpha1.AnalysisRunList{}, &networkingv1.IngressList{}, &appsv1.DeploymentList{})
	f.createEchoserver(5)
	f.createFile(guideFile("example1-ingress.yaml"))
	f.create(string(template))
	f.create(string(example1Background(b)))
	tmpl := &analysisv1alpha1.AnalysisTemplate{}
	must(b, f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "error-rate"}, tmpl))
	interval := tmpl.Spec.Metrics[0].Interval.Duration
	f.waitRollout(0, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })

	var total, scrape, detect, react samples
	i := 0
	for b.Loop() {
		i++
		prom, stop := f.ownPrometheus()
		from := f.rec.mark()
		f.setImage(image(i))
		next, e := f.waitRollout(from, "step 1 to be routed and paused", atStep(1, v1beta1.CanaryStepStatePaused))
		hash := e.obj.(*v1beta1.Rollout).Status.CanaryStatus.PodTemplateHash
		f.waitRun(from, hash, "the background analysis to pass twice", func(r *analysisv1alpha1.AnalysisRun) bool {
			return len(r.Status.MetricResults) > 0 && r.Status.MetricResults[0].Successful >= 2
		})

		at := time.Now().Truncate(time.Second).Add(switchLead)
		f.turnBad(hash, at)
		if late := time.Since(at); late > -time.Second {
			b.Fatalf("the canary pods were told %s before the switch, too late", -late)
		}
		gone, goneEvent := f.wait(next, "the canary Ingress to be deleted", func(e event) bool {
			ing, ok := is[*networkingv1.Ingress](e, ingress.CanaryName("echoserver"))
			return ok && (e.typ == watch.Deleted || ing.DeletionTimestamp != nil)
		})
		_, failed := f.waitRun(from, hash, "the background analysis to fail", func(r *analysisv1alpha1.AnalysisRun) bool {
			return r.Status.Phase == analysisv1alpha1.AnalysisFailed
		})
		if failed.at.Before(at) {
			b.Fatalf("the analysis failed before the canary turned bad: %s", failed.obj.(*analysisv1alpha1.AnalysisRun).Status.Message)
		}
		goneAt, err := f.rec.committedAt(from, goneEvent)
		must(b, err)
		failedAt, err := f.rec.committedAt(from, failed)
		must(b, err)
		scraped, err := f.firstScraped(prom, hash)
		must(b, err)
		total = append(total, goneAt.Sub(at))
		scrape = append(scrape, scraped.Sub(at))
		detect = append(detect, failedAt.Sub(scraped))
		react = append(react, goneAt.Sub(failedAt))

		// The team re-applies the stable version: the release ends.
		f.setImage(imageV1)
		f.waitRollout(gone, "the release to be cancelled", completed)
		f.waitDeployment(gone, imageV1)
		stop()
	}
	budget := scrapeInterval + interval
	fmt.Printf("\n== Time to stable (issue 5), %s: %d releases of Example 1 (5 pods) with a background analysis;\n", about, len(total))
	fmt.Printf("   at step 1 the canary pod turns from healthy to 20%% errors at a whole second, after two passed measurements;\n")
	fmt.Printf("   each sample has its own Prometheus (scraping every %s), so its own scrape phase\n", scrapeInterval)
	fmt.Println(machine())
	fmt.Printf("   canary turned bad -> canary Ingress deleted (all traffic on stable): %s\n", total)
	fmt.Printf("     of which: turned bad -> the first scrape with an error:  %s\n", scrape)
	fmt.Printf("                 (a simulated pod's second is counted once it is over: at least 1s, plus the scrape's phase)\n")
	fmt.Printf("               that scrape -> AnalysisRun Failed:              %s\n", detect)
	fmt.Printf("               AnalysisRun Failed -> canary Ingress deleted:   %s\n", react)
	fmt.Printf("   scrape interval %s + analysis interval %s = %s: p50 %.2fx, p99 %.2fx (target: at most 1.5x: %s)\n",
		scrapeInterval, interval, budget, ratio(total.quantile(0.5), budget), ratio(total.quantile(0.99), budget), verdict(total.quantile(0.99) <= budget*3/2))
	b.ReportMetric(ratio(total.quantile(0.5), budget), "x-budget-p50")
	b.ReportMetric(ratio(total.quantile(0.99), budget), "x-budget-p99")
	total.report(b, "to-stable")
}

func ratio(d, of time.Duration) float64 { return d.Seconds() / of.Seconds() }

// ownPrometheus starts a Prometheus for the next sample and points the
// error-rate template at it, so that every sample has its own scrape
// phase: Prometheus offsets a target's scrapes by a hash of its address,
// here a new port of the simulator. The switch is on a whole second, so
// with one Prometheus for all samples the time from the switch to the
// first scrape that sees it would be the same every time.
func (f *fixture) ownPrometheus() (prom *controlplane.Prometheus, stop func()) {
	f.b.Helper()
	ctx, cancel := context.WithCancel(f.ctx)
	addr, err := metrics.Simulator.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		f.b.Fatal(err)
	}
	prom, err = framework.StartPrometheusFor(ctx, f.b.TempDir(), addr)
	if err != nil {
		cancel()
		f.b.Fatal(err)
	}
	tmpl := &analysisv1alpha1.AnalysisTemplate{}
	must(f.b, f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "error-rate"}, tmpl))
	for i := range tmpl.Spec.Metrics {
		tmpl.Spec.Metrics[i].Provider.Prometheus.Address = prom.URL()
	}
	must(f.b, f.c.Update(f.ctx, tmpl))
	stop = func() {
		_ = prom.Stop()
		cancel()
	}
	f.b.Cleanup(stop) // if the sample fails half way
	return prom, stop
}

// firstScraped is the time of the first sample Prometheus scraped with an
// error of revision hash in it.
func (f *fixture) firstScraped(prom *controlplane.Prometheus, hash string) (time.Time, error) {
	q := fmt.Sprintf(`http_requests_total{namespace=%q,pod_template_hash=%q,code="500"}[5m]`, f.ns, hash)
	resp, err := http.Get(prom.URL() + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return time.Time{}, err
	}
	var first time.Time
	for _, series := range body.Data.Result {
		for _, v := range series.Values {
			ts, _ := v[0].(float64)
			value, _ := v[1].(string)
			if value != "0" {
				if at := time.UnixMilli(int64(ts * 1000)); first.IsZero() || at.Before(first) {
					first = at
				}
				break
			}
		}
	}
	if first.IsZero() {
		return first, fmt.Errorf("prometheus has no error of revision %s", hash)
	}
	return first, nil
}

// turnBad makes the pods of revision hash serve 20% errors from at on.
func (f *fixture) turnBad(hash string, at time.Time) {
	f.b.Helper()
	var pods corev1.PodList
	must(f.b, f.c.List(f.ctx, &pods, client.InNamespace(f.ns), client.MatchingLabels{appsv1.DefaultDeploymentUniqueLabelKey: hash}))
	if len(pods.Items) == 0 {
		f.b.Fatalf("no pod of revision %s", hash)
	}
	body := fmt.Sprintf(`{"metadata":{"labels":{%q:%q},"annotations":{%q:%q}}}`,
		simulator.ScenarioLabel, simulator.Errors, simulator.ScenarioFromAnnotation, at.UTC().Format(time.RFC3339Nano))
	for i := range pods.Items {
		must(f.b, f.c.Patch(f.ctx, &pods.Items[i], client.RawPatch(types.MergePatchType, []byte(body))))
	}
}

func (f *fixture) wait(from int, what string, pred func(event) bool) (int, event) {
	f.b.Helper()
	i, e, err := f.rec.wait(f.ctx, from, 3*time.Minute, what, pred)
	if err != nil {
		f.b.Fatalf("%v\nmanager log:\n%s", err, env.Manager.LogTail())
	}
	return i, e
}

// waitRun waits for an event of the background run of revision hash for
// which cond holds.
func (f *fixture) waitRun(from int, hash, what string, cond func(*analysisv1alpha1.AnalysisRun) bool) (int, event) {
	f.b.Helper()
	return f.wait(from, what, func(e event) bool {
		r, ok := is[*analysisv1alpha1.AnalysisRun](e, "")
		return ok && r.Labels[run.LabelRevision] == hash && r.Labels[run.LabelStep] == "background" && cond(r)
	})
}
