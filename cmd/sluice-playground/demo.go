package main

import (
	"context"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/cmd/kubectl-sluice/cli"
	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/docs/examples"
	"github.com/sluicehq/sluice/rollout"
)

const (
	demoNamespace = "default"
	imageRepo     = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:"
)

// demo releases the Kruise guide's Example 1 (echoserver behind an Nginx
// Ingress: a header A/B test, then 50%, then 100%) with an error-rate
// analysis after every step: a healthy version is promoted with nobody
// approving, then a version serving 20% errors is rolled back by the
// analysis, and the team re-applies the good version.
func demo(ctx context.Context, p *playground) error {
	// docs/examples, carried inside the binary.
	files := []string{
		"guide/echoserver.yaml",
		"guide/example1-ingress.yaml",
		"error-rate-template.yaml",
		"example1-analysis-rollout.yaml",
	}
	fmt.Println("\n== The Kruise guide's Example 1 with an error-rate analysis after every step")
	for _, f := range files {
		fmt.Printf("  kubectl apply -f docs/examples/%s\n", f)
		raw, err := examples.File(f)
		if err != nil {
			return err
		}
		if _, err := manifest.Create(ctx, p.client, demoNamespace, raw); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if err := watchRollout(ctx, p, func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy }); err != nil {
		return err
	}

	fmt.Println("\n== Releasing demo:1.10.3, a healthy version: the analysis promotes it step by step, nobody approves")
	fmt.Println("   (what follows is `kubectl sluice status rollouts-demo -w`)")
	if err := release(ctx, p, imageRepo+"1.10.3"); err != nil {
		return err
	}

	fmt.Println("\n== Releasing demo:1.10.4-errors, which answers 20% of requests with 5xx: the analysis rolls it back")
	if err := release(ctx, p, imageRepo+"1.10.4-errors"); err != nil {
		return err
	}
	if err := waitQuietly(ctx, p, func(r *v1beta1.Rollout) bool {
		return reason(r) == rollout.ReasonAborted && r.Status.CanaryStatus.CanaryReplicas == 0
	}); err != nil {
		return err
	}
	fmt.Println("\n== The team re-applies demo:1.10.3, ending the aborted release")
	if err := setImage(ctx, p, imageRepo+"1.10.3"); err != nil {
		return err
	}
	return watchRollout(ctx, p, completed)
}

// release sets the image and follows the release with the plugin's live
// status view until it completes or is aborted.
func release(ctx context.Context, p *playground, image string) error {
	before := &v1beta1.Rollout{}
	if err := p.client.Get(ctx, client.ObjectKey{Namespace: demoNamespace, Name: "rollouts-demo"}, before); err != nil {
		return err
	}
	if err := setImage(ctx, p, image); err != nil {
		return err
	}
	// status -w ends at once on a Rollout at rest: start it once the
	// controller has taken the new version up.
	if err := waitQuietly(ctx, p, func(r *v1beta1.Rollout) bool {
		cs := r.Status.CanaryStatus
		return r.Status.Phase == v1beta1.RolloutPhaseProgressing && cs != nil && (before.Status.CanaryStatus == nil || cs.CanaryRevision != before.Status.CanaryStatus.CanaryRevision)
	}); err != nil {
		return err
	}
	code := cli.Run(ctx, []string{"status", "rollouts-demo", "-w", "-n", demoNamespace, "--kubeconfig", p.cp.KubeconfigPath()},
		genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	switch code {
	case 0, 5: // completed; aborted
		return ctx.Err()
	}
	return fmt.Errorf("kubectl sluice status -w exited %d", code)
}

// waitQuietly waits until done holds, printing nothing. The demo has no
// deadline of its own: it waits until Ctrl-C.
func waitQuietly(ctx context.Context, p *playground, done func(*v1beta1.Rollout) bool) error {
	r := &v1beta1.Rollout{}
	err := controlplane.WaitFor(ctx, forever, func() (bool, error) {
		if err := p.client.Get(ctx, client.ObjectKey{Namespace: demoNamespace, Name: "rollouts-demo"}, r); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return done(r), nil
	})
	if ctx.Err() != nil {
		return ctx.Err() // Ctrl-C: the caller ends quietly
	}
	return err
}

// forever bounds a wait by the demo's context alone.
const forever = 365 * 24 * time.Hour

func completed(r *v1beta1.Rollout) bool {
	return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
}

func reason(r *v1beta1.Rollout) string {
	for _, c := range r.Status.Conditions {
		if c.Type == v1beta1.RolloutConditionProgressing {
			return c.Reason
		}
	}
	return ""
}

func setImage(ctx context.Context, p *playground, image string) error {
	d := &appsv1.Deployment{}
	if err := p.client.Get(ctx, client.ObjectKey{Namespace: demoNamespace, Name: "echoserver"}, d); err != nil {
		return err
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	return p.client.Patch(ctx, d, patch)
}

// watchRollout prints a line whenever the release changes and returns
// once done holds.
func watchRollout(ctx context.Context, p *playground, done func(*v1beta1.Rollout) bool) error {
	start, last := time.Now(), ""
	return waitQuietly(ctx, p, func(r *v1beta1.Rollout) bool {
		if line := progressLine(r); line != last && r.Status.Phase != "" {
			fmt.Printf("  [%5.1fs] %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		return done(r)
	})
}

// progressLine is one line of a release: phase, step, new pods, the
// traffic in force, the analysis verdict and the message.
func progressLine(r *v1beta1.Rollout) string {
	st := r.Status
	steps := r.Spec.Strategy.Steps()
	line := string(st.Phase)
	switch reason(r) {
	case rollout.ReasonAborted:
		pods, _ := st.NewPods()
		line += fmt.Sprintf(" step %d/%d, aborted: new pods %d, traffic %s", st.CurrentStepIndex, len(steps), pods, trafficOf(st.TrafficOf()))
	case v1beta1.ProgressingReasonInRolling, v1beta1.ProgressingReasonPaused:
		line += progress(r)
	}
	if st.Message != "" {
		line += "\n           " + st.Message
	}
	return line
}

// progress is the step, the new pods, the traffic in force and the
// analysis.
func progress(r *v1beta1.Rollout) string {
	st := r.Status
	line := ""
	if st.Phase == v1beta1.RolloutPhaseProgressing && st.Progress() != nil {
		pods, ready := st.NewPods()
		line += fmt.Sprintf(" step %d/%d %-19s new pods %d/%d ready", st.CurrentStepIndex, len(r.Spec.Strategy.Steps()), st.CurrentStepState, ready, pods)
		line += "  traffic: " + trafficOf(st.TrafficOf())
		if a := st.Analysis; a != nil && a.StepRun != nil && st.CurrentStepState == v1beta1.CanaryStepStateMetricsAnalysis {
			phase := string(a.StepRun.Phase)
			if phase == "" {
				phase = "starting"
			}
			line += "  analysis: " + phase
		}
	}
	return line
}

// trafficOf says what the routing in force sends to the new version.
func trafficOf(t *v1beta1.TrafficStatus) string {
	switch {
	case t == nil:
		return "all to stable"
	case t.Weight != nil:
		return fmt.Sprintf("%d%%", *t.Weight)
	case len(t.Matches) > 0:
		return "requests with " + t.Matches[0].String()
	}
	return "all to stable"
}
