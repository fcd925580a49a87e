//go:build e2e

package controlplane_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/e2e/framework"
)

// neverReadyStage keeps pods of image demo:bad Running but never Ready.
const neverReadyStage = `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-never-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: DoesNotExist
    - key: .status.phase
      operator: In
      values: [Pending]
    - key: '.spec.containers.[].image'
      operator: In
      values: [demo:bad]
  next:
    statusTemplate: |
      phase: Running
      conditions:
      - type: Ready
        status: "False"
        reason: NeverReady
`

func TestControlPlane(t *testing.T) {
	ctx := t.Context()
	began := time.Now()
	cp, err := controlplane.Start(ctx, controlplane.Options{ExtraStages: []string{neverReadyStage}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %s (apiserver %s)", time.Since(began).Round(time.Millisecond), cp.APIServerURL())
	pids := cp.PIDs()
	stopped := false
	t.Cleanup(func() {
		if t.Failed() && !stopped {
			for name := range pids {
				logTail(t, name, cp.LogPath(name))
			}
		}
		cp.Stop()
	})
	if _, err := os.Stat(cp.KubeconfigPath()); err != nil {
		t.Errorf("kubeconfig: %v", err)
	}

	beats := heartbeats(t, cp)
	t.Run("DeploymentRollsOut", func(t *testing.T) { testDeployment(t, cp) })
	t.Run("ExtraStageKeepsPodsUnready", func(t *testing.T) { testNeverReady(t, cp) })
	t.Run("JobPodsComplete", func(t *testing.T) { testJob(t, cp) })
	t.Run("Prometheus", testPrometheus)
	t.Run("NodesHeartbeat", func(t *testing.T) { testHeartbeat(t, cp, beats) })
	t.Run("AuditLogOfDeletions", func(t *testing.T) { testAuditLog(t, cp) })
	t.Run("KwokDeletesOnlyTerminatingPods", func(t *testing.T) { testKwokGuard(t, cp) })
	t.Run("APIServerRestarts", func(t *testing.T) { testAPIServerRestart(t, cp) })

	began = time.Now()
	if err := cp.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := cp.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	stopped = true
	t.Logf("Stop took %s", time.Since(began).Round(time.Millisecond))
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) still runs after Stop", name, pid)
		}
	}
	if len(pids) != 5 {
		t.Errorf("PIDs() = %v, want 5 components", pids)
	}
	if _, err := os.Stat(cp.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary dir %s not removed: %v", cp.Dir(), err)
	}
}

func testDeployment(t *testing.T, cp *controlplane.ControlPlane) {
	ctx, c := t.Context(), cp.Client()
	ns := framework.NewNamespace(t, cp)
	d := framework.Deployment("", "web", 3, "demo:1.0")
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "web", 3, "demo:1.0", true)

	began := time.Now()
	err := retry.RetryOnConflict(framework.ConflictRetry, func() error {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "demo:1.1"
		_, err = c.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "web", 3, "demo:1.1", true)
	err = controlplane.WaitFor(ctx, 30*time.Second, func() (bool, error) {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.Replicas == 3 && s.UpdatedReplicas == 3 &&
			s.ReadyReplicas == 3 && s.AvailableReplicas == 3, nil
	})
	if err != nil {
		t.Fatalf("rollout to demo:1.1: %v", err)
	}
	t.Logf("rollout of 3 pods took %s", time.Since(began).Round(time.Millisecond))

	rss, err := c.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rss.Items) != 2 {
		t.Fatalf("%d ReplicaSets, want 2 (old and new)", len(rss.Items))
	}
	for _, rs := range rss.Items {
		want := int32(0)
		if rs.Spec.Template.Spec.Containers[0].Image == "demo:1.1" {
			want = 3
		}
		if *rs.Spec.Replicas != want || rs.Status.ReadyReplicas != want {
			t.Errorf("ReplicaSet %s (%s): replicas %d ready %d, want %d", rs.Name,
				rs.Spec.Template.Spec.Containers[0].Image, *rs.Spec.Replicas, rs.Status.ReadyReplicas, want)
		}
	}
}

// testAuditLog checks that the API server records who deleted a pod.
func testAuditLog(t *testing.T, cp *controlplane.ControlPlane) {
	ctx, c := t.Context(), cp.Client()
	ns := framework.NewNamespace(t, cp)
	from := time.Now().Add(-time.Second)
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, framework.Deployment("", "audited", 1, "demo:1.0"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "audited", 1, "demo:1.0", true)
	pod := listPods(t, c, ns, "audited")[0]
	if err := c.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []controlplane.Deletion
	err := controlplane.WaitFor(ctx, 10*time.Second, func() (bool, error) {
		ds, err := cp.Deletions(ns, from, time.Now())
		got = ds
		for _, d := range ds {
			if d.Resource == "pods" && d.Name == pod.Name && d.Code == 200 && d.UserAgent != "" {
				return true, nil
			}
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("the deletion of pod %s is not in the audit log: %v; deletions of %s: %+v", pod.Name, err, ns, got)
	}
}

// testKwokGuard: kwok's user may not delete a pod that is not terminating
// (a StatefulSet's new pod under an old name); it deletes terminating
// pods, as every rollout here shows.
func testKwokGuard(t *testing.T, cp *controlplane.ControlPlane) {
	ctx, c := t.Context(), cp.Client()
	ns := framework.NewNamespace(t, cp)
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, framework.Deployment("", "guarded", 1, "demo:1.0"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "guarded", 1, "demo:1.0", true)
	pod := listPods(t, c, ns, "guarded")[0]
	cfg := cp.RESTConfig()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "kwok", Groups: []string{"system:masters"}}
	asKwok, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = asKwok.CoreV1().Pods(ns).Delete(ctx, pod.Name, *metav1.NewDeleteOptions(0))
	if err == nil || !strings.Contains(err.Error(), "kwok deletes only terminating pods") {
		t.Fatalf("kwok deleting running pod %s: %v, want refused by the policy", pod.Name, err)
	}
}

// testAPIServerRestart restarts kube-apiserver: its watches are cut, and
// afterwards the same client and every other component carry on (a new
// namespace gets its ServiceAccount, a Deployment's pods are scheduled and
// become ready).
func testAPIServerRestart(t *testing.T, cp *controlplane.ControlPlane) {
	ctx, c := t.Context(), cp.Client()
	before, url := cp.PIDs()["kube-apiserver"], cp.APIServerURL()
	w, err := c.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	began := time.Now()
	if err := cp.RestartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("RestartAPIServer took %s", time.Since(began).Round(time.Millisecond))
	if after := cp.PIDs()["kube-apiserver"]; after == before || alive(before) || !alive(after) {
		t.Errorf("kube-apiserver pid %d before, %d after the restart: want a new process, the old one gone", before, after)
	}
	if cp.APIServerURL() != url {
		t.Errorf("address %s after the restart, want %s", cp.APIServerURL(), url)
	}
	cut := time.After(30 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-w.ResultChan():
		case <-cut:
			t.Fatal("a watch opened before the restart is still open 30s after it")
		}
	}

	ns := framework.NewNamespace(t, cp)
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, framework.Deployment("", "after", 2, "demo:1.0"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "after", 2, "demo:1.0", true)
}

func testNeverReady(t *testing.T, cp *controlplane.ControlPlane) {
	ctx, c := t.Context(), cp.Client()
	ns := framework.NewNamespace(t, cp)
	if _, err := c.AppsV1().Deployments(ns).Create(ctx, framework.Deployment("", "bad", 2, "demo:bad"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPods(t, c, ns, "bad", 2, "demo:bad", false)
	// kwok picks among matching stages at random when they all have weight 0:
	// watch a while to be sure none became ready through the built-in stage.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		pods := listPods(t, c, ns, "bad")
		for _, p := range pods {
			if podReady(&p) || p.Status.Phase != corev1.PodRunning {
				t.Fatalf("pod %s: phase %s ready %v, want Running and never ready", p.Name, p.Status.Phase, podReady(&p))
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Deletion still goes through kwok's built-in pod-delete stage.
	if err := c.AppsV1().Deployments(ns).Delete(ctx, "bad", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err := controlplane.WaitFor(ctx, 30*time.Second, func() (bool, error) {
		return len(listPods(t, c, ns, "bad")) == 0, nil
	})
	if err != nil {
		t.Fatalf("pods of the deleted Deployment remain: %v", err)
	}
}

// testJob checks the pod-complete stage: a Job's pod runs, then
// succeeds, and the Job completes.
func testJob(t *testing.T, cp *controlplane.ControlPlane) {
	ctx, c := t.Context(), cp.Client()
	ns := framework.NewNamespace(t, cp)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "once"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "task", Image: "demo:1.0"}},
		}}},
	}
	if _, err := c.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var phases []corev1.PodPhase
	err := controlplane.WaitFor(ctx, 30*time.Second, func() (bool, error) {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=once"})
		if err != nil {
			return false, err
		}
		phases = phases[:0]
		for _, p := range pods.Items {
			phases = append(phases, p.Status.Phase)
		}
		return len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodSucceeded &&
			pods.Items[0].Status.ContainerStatuses[0].State.Terminated != nil, nil
	})
	if err != nil {
		t.Fatalf("the Job's pod did not succeed (phases %v): %v", phases, err)
	}
}

// heartbeats are the Ready conditions' heartbeat times of the nodes.
func heartbeats(t *testing.T, cp *controlplane.ControlPlane) map[string]time.Time {
	t.Helper()
	nodes, err := cp.Client().CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: controlplane.NodeLabel + "=kwok"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				out[n.Name] = c.LastHeartbeatTime.Time
			}
		}
	}
	return out
}

// testHeartbeat checks the node-heartbeat stage: every node's heartbeat
// is renewed (every 10 to 20s), and the nodes stay Ready.
func testHeartbeat(t *testing.T, cp *controlplane.ControlPlane, before map[string]time.Time) {
	if len(before) != 3 {
		t.Fatalf("ready nodes at the start: %v, want 3", before)
	}
	var now map[string]time.Time
	err := controlplane.WaitFor(t.Context(), time.Minute, func() (bool, error) {
		now = heartbeats(t, cp)
		for name, at := range before {
			if beat, ok := now[name]; !ok || !beat.After(at) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Errorf("heartbeats not renewed: before %v, now %v: %v", before, now, err)
	}
}

func testPrometheus(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	began := time.Now()
	prom, err := controlplane.StartPrometheus(ctx, dir, controlplane.PrometheusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prom.Stop() })
	t.Logf("Prometheus start took %s", time.Since(began).Round(time.Millisecond))
	client, err := promapi.NewClient(promapi.Config{Address: prom.URL()})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(client)
	waitUp(t, api)
	beforeRestart := time.Now()

	pid, url := prom.PID(), prom.URL()
	began = time.Now()
	if err := prom.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Prometheus restart took %s", time.Since(began).Round(time.Millisecond))
	if alive(pid) || prom.PID() == pid || prom.URL() != url {
		t.Errorf("after Restart: old pid %d alive=%v, new pid %d, URL %s (was %s)", pid, alive(pid), prom.PID(), prom.URL(), url)
	}
	waitUp(t, api)
	// The data written before the restart is still there.
	v, _, _, err := api.Query(ctx, `up{job="prometheus"}`, beforeRestart)
	if err != nil || len(v.(model.Vector)) != 1 {
		t.Errorf("sample from before the restart: %v, %v", v, err)
	}

	pid = prom.PID()
	began = time.Now()
	if err := prom.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Prometheus stop took %s", time.Since(began).Round(time.Millisecond))
	if alive(pid) || prom.PID() != 0 {
		t.Errorf("prometheus (pid %d) still runs after Stop", pid)
	}
}
