package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// controllers are the kube-controller-manager controllers a workload needs:
// Deployments, ReplicaSets, StatefulSets, DaemonSets and Jobs with garbage
// collection, Services' endpoints, namespaces and ServiceAccounts (with
// their tokens and the kube-root-ca.crt ConfigMap).
var controllers = []string{
	"deployment-controller",
	"replicaset-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
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
// ServiceAccount that Start waits for), so it serves nothing: with
// --secure-port=0 it listens on no port, and no port can be taken from it.
func (c *ControlPlane) startControllerManager(binary string) error {
	_, err := c.start(binControllerManager, binary, nil,
		"--kubeconfig="+c.kubecfg,
		"--controllers="+strings.Join(controllers, ","),
		"--service-account-private-key-file="+c.pki.saKey,
		"--root-ca-file="+c.pki.caCert,
		"--leader-elect=false",
		"--secure-port=0",
		// The default client throttling (20 QPS) slows down scaling many pods.
		"--kube-api-qps=200",
		"--kube-api-burst=400",
	)
	return err
}

// startScheduler runs kube-scheduler, configured by file (its client flags
// are deprecated). Like the controller manager it serves nothing
// (--secure-port=0): pods being scheduled show it works.
func (c *ControlPlane) startScheduler(binary string) error {
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
	_, err := c.start(binScheduler, binary, nil,
		"--config="+cfg,
		"--secure-port=0",
	)
	return err
}
