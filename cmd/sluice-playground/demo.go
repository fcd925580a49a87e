package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
)

const (
	demoNamespace = "default"
	imageRepo     = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:"
)

// demo releases the Kruise guide's Example 4 (batches without traffic
// routing) on a 10-pod echoserver: a good version to completion, with the
// approval a person would give, then a version that is rolled back by
// re-applying the old template.
func demo(ctx context.Context, p *playground) error {
	guide := filepath.Join(framework.RepoRoot(), "e2e", "testdata", "guide")
	fmt.Println("\n== The Kruise guide's Example 4: echoserver (10 pods) and its Rollout")
	manifest, err := os.ReadFile(filepath.Join(guide, "echoserver.yaml"))
	if err != nil {
		return err
	}
	objs, err := framework.Objects(manifest)
	if err != nil {
		return err
	}
	for _, o := range objs {
		o.SetNamespace(demoNamespace)
		if o.GetKind() == "Deployment" {
			_ = unstructured.SetNestedField(o.Object, int64(10), "spec", "replicas")
		}
		if err := p.client.Create(ctx, o); client.IgnoreAlreadyExists(err) != nil {
			return err
		}
	}
	if _, err := framework.CreateFile(ctx, p.client, demoNamespace, filepath.Join(guide, "example4-rollout.yaml")); client.IgnoreAlreadyExists(err) != nil && !strings.Contains(fmt.Sprint(err), "already exists") {
		return err
	}
	if err := watchRollout(ctx, p, false, func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy }); err != nil {
		return err
	}

	fmt.Println("\n== Releasing demo:1.10.3 (as `kubectl apply` of the edited echoserver.yaml would)")
	if err := setImage(ctx, p, imageRepo+"1.10.3"); err != nil {
		return err
	}
	if err := watchRollout(ctx, p, true, completed); err != nil {
		return err
	}

	fmt.Println("\n== Releasing demo:1.10.4, then going back to 1.10.3 mid-release (re-applying the old template)")
	if err := setImage(ctx, p, imageRepo+"1.10.4"); err != nil {
		return err
	}
	if err := watchRollout(ctx, p, false, func(r *v1beta1.Rollout) bool {
		return r.Status.CurrentStepState == v1beta1.CanaryStepStatePaused && r.Status.CurrentStepIndex == 1
	}); err != nil {
		return err
	}
	if err := setImage(ctx, p, imageRepo+"1.10.3"); err != nil {
		return err
	}
	return watchRollout(ctx, p, false, func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
}

func completed(r *v1beta1.Rollout) bool {
	return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
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

// watchRollout prints a line whenever the release changes, approves a
// manual pause the way kubectl-kruise does (when autoApprove), and returns
// once done holds.
func watchRollout(ctx context.Context, p *playground, autoApprove bool, done func(*v1beta1.Rollout) bool) error {
	start, last := time.Now(), ""
	approvedAt := time.Time{}
	for {
		r := &v1beta1.Rollout{}
		if err := p.client.Get(ctx, client.ObjectKey{Namespace: demoNamespace, Name: "rollouts-demo"}, r); err != nil {
			return err
		}
		var newPods, ready int32
		if cs := r.Status.CanaryStatus; cs != nil {
			newPods, ready = cs.CanaryReplicas, cs.CanaryReadyReplicas
		}
		line := fmt.Sprintf("%-12s step %d/%d %-19s new-version pods %2d (ready %2d)  %s", r.Status.Phase, r.Status.CurrentStepIndex,
			len(r.Spec.Strategy.Canary.Steps), r.Status.CurrentStepState, newPods, ready, r.Status.Message)
		if line != last {
			fmt.Printf("  [%5.1fs] %s\n", time.Since(start).Seconds(), line)
			last = line
		}
		if done(r) {
			return nil
		}
		if autoApprove && strings.Contains(r.Status.Message, "manually confirm") && time.Since(approvedAt) > 5*time.Second {
			time.Sleep(2 * time.Second)
			fmt.Println("  → approving, as `kubectl-kruise rollout approve rollouts/rollouts-demo` does")
			if err := approve(ctx, p); err != nil {
				return err
			}
			approvedAt = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func approve(ctx context.Context, p *playground) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/v1alpha1")
	u.SetKind("Rollout")
	u.SetNamespace(demoNamespace)
	u.SetName("rollouts-demo")
	body := []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`)
	return p.client.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, body))
}
