//go:build e2e

package bench_test

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// BenchmarkReleaseVsNative compares, on the same control plane and in the
// same run, a native rolling update of a 10-replica Deployment (no
// Rollout, the Deployment's default 25% surge and unavailability) with the
// same change of a 10-replica Deployment under a zero-pause 3-step Rollout
// (1, 50%, 100%). Each iteration does one of each, one after the other;
// each is timed from the template written to every pod of the new version
// available and no old pod left (for the Rollout, also its status
// Completed), as seen by this process's watches. Target: ≤ 1.5× native.
func BenchmarkReleaseVsNative(b *testing.B) {
	native := newFixture(b, &appsv1.DeploymentList{})
	native.createEchoserver(releaseReplicas)
	sluice := newFixture(b, &v1beta1.RolloutList{}, &appsv1.DeploymentList{})
	sluice.createEchoserver(releaseReplicas)
	sluice.create(zeroPauseRollout)
	sluice.waitRollout(0, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })

	var nat, rel samples
	i := 0
	for b.Loop() {
		i++
		img := image(i)
		from := native.rec.mark()
		start := time.Now()
		native.setImage(img)
		nat = append(nat, native.waitDeployment(from, img).Sub(start))

		from = sluice.rec.mark()
		start = time.Now()
		sluice.setImage(img)
		next, _ := sluice.waitRollout(from, "the release to start", progressing)
		_, done := sluice.waitRollout(next, "the release to complete", completed)
		end := sluice.waitDeployment(from, img)
		if done.at.After(end) {
			end = done.at
		}
		rel = append(rel, end.Sub(start))
	}
	r := ratio(rel.quantile(0.5), nat.quantile(0.5))
	fmt.Printf("\n== A release vs a native rolling update (issue 11): %d of each, a 10-replica Deployment, same control plane\n", len(nat))
	fmt.Println(machine())
	fmt.Printf("   native rolling update (25%% surge/unavailable):      %s\n", nat)
	fmt.Printf("   zero-pause 3-step Rollout (1, 50%%, 100%%):           %s\n", rel)
	fmt.Printf("   ratio of the medians: %.2fx native (p99s: %.2fx); target ≤ 1.5x: %s\n",
		r, ratio(rel.quantile(0.99), nat.quantile(0.99)), verdict(r <= 1.5))
	nat.report(b, "native")
	rel.report(b, "rollout")
	b.ReportMetric(r, "x-native")
}
