// Package controlplane runs a real Kubernetes control plane on 127.0.0.1
// for the playground, the e2e tests and the benchmarks: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok (which
// simulates nodes and the pod lifecycle, so Deployments roll out through
// real ReplicaSets and pods become Ready without any container running), and
// optionally Prometheus.
//
// The binaries come from `make tools` (devenv/tools/build.sh), see BinDir;
// kwok's node and pod lifecycle stages are this package's own, embedded
// (stages/). Every process runs in its own process group and is killed
// with the program that started it, even when that panics or is killed
// itself (Pdeathsig, from one dedicated OS thread that lives as long as
// the program).
//
// Ports: a port found free can be taken by another process before the
// component binds it (two environments starting at once). A component that
// listens is therefore started again on new ports when it exits with
// "address already in use", and counts as started only once it holds its
// ports itself (from /proc, so an answer from some other process on that
// port is never mistaken for it). kube-controller-manager, kube-scheduler
// and kwok serve nothing here and listen on no port. StartListening does
// the same for other programs (sluice-controller, in devenv/manager).
//
// Typical use, one control plane per test package:
//
//	var cp *controlplane.ControlPlane
//
//	func TestMain(m *testing.M) {
//		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
//		var err error
//		cp, err = controlplane.Start(ctx, controlplane.Options{})
//		cancel()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		code := m.Run()
//		cp.Stop()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		client := cp.Client() // or cp.RESTConfig() for controller-runtime
//		...
//	}
//
// Simulated pods: kwok makes every pod scheduled on its nodes Running and
// Ready at once, completes pods owned by Jobs, and deletes terminating pods.
// Options.ExtraStages adds behaviour, for example pods whose image ends in
// ":bad" that run but never become ready:
//
//	apiVersion: kwok.x-k8s.io/v1alpha1
//	kind: Stage
//	metadata:
//	  name: pod-never-ready
//	spec:
//	  resourceRef: {apiGroup: v1, kind: Pod}
//	  selector:
//	    matchExpressions:
//	    - {key: .metadata.deletionTimestamp, operator: DoesNotExist}
//	    - {key: .status.phase, operator: In, values: [Pending]}
//	    - {key: '.spec.containers.[].image', operator: In, values: [demo:bad]}
//	  next:
//	    statusTemplate: |
//	      phase: Running
//	      conditions:
//	      - {type: Ready, status: "False", reason: NeverReady}
//
// Such a stage gets weight 1 unless it sets one, which makes kwok prefer it
// over the built-in pod-ready stage (weight 0) for the pods it selects. A
// stage named like a built-in one (pod-ready, pod-complete, pod-delete,
// node-initialize, node-heartbeat) replaces it.
//
// Webhooks served by a test process are reached by the apiserver through
// clientConfig.url (https://127.0.0.1:PORT/...) with a caBundle; Services
// do not route anywhere (there is no kube-proxy).
package controlplane
