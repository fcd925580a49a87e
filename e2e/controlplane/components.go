package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// controllers are the kube-controller-manager controllers a workload needs:
// Deployments, ReplicaSets, StatefulSets and DaemonSets with garbage
// collection, Services' endpoints, namespaces and ServiceAccounts (with
// their tokens and the kube-root-ca.crt ConfigMap).
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"garbage-collector-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
}

// startControllerManager runs kube-controller-manager with the admin
// kubeconfig. Its readiness shows through what it does (the default
// ServiceAccount that Start waits for).
func (c *ControlPlane) startControllerManager(binary string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	_, err = c.start(binControllerManager, binary,
		"--kubeconfig="+c.kubecfg,
		"--authentication-kubeconfig="+c.kubecfg,
		"--authorization-kubeconfig="+c.kubecfg,
		"--controllers="+strings.Join(controllers, ","),
		"--service-account-private-key-file="+c.pki.saKey,
		"--root-ca-file="+c.pki.caCert,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		// The default client throttling (20 QPS) slows down scaling many pods.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
	)
	return err
}

// startScheduler runs kube-scheduler, configured by file (its client flags
// are deprecated).
func (c *ControlPlane) startScheduler(binary string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	cfg := filepath.Join(c.dir, "kube-scheduler.yaml")
	data := fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 200
  burst: 400
leaderElection:
  leaderElect: false
`, c.kubecfg)
	if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
		return err
	}
	_, err = c.start(binScheduler, binary,
		"--config="+cfg,
		"--authentication-kubeconfig="+c.kubecfg,
		"--authorization-kubeconfig="+c.kubecfg,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
	)
	return err
}
