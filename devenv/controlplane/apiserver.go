package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// serviceClusterIPRange is the range Service ClusterIPs are allocated from.
const serviceClusterIPRange = "10.0.0.0/24"

// startEtcd runs a single-member etcd and returns its client URL once healthy.
func (c *ControlPlane) startEtcd(ctx context.Context, binary string) (string, error) {
	var clientURL string
	p, _, err := c.startListening(ctx, 2, func(ports []int) (*process, error) {
		clientURL = "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		// A failed attempt may have created the data folder.
		if err := os.RemoveAll(filepath.Join(c.dir, "etcd")); err != nil {
			return nil, err
		}
		return startProcess(binEtcd, binary, []string{
			"--name=default",
			"--data-dir=" + filepath.Join(c.dir, "etcd"),
			"--listen-client-urls=" + clientURL,
			"--advertise-client-urls=" + clientURL,
			"--listen-peer-urls=" + peerURL,
			"--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=default=" + peerURL,
			// The data is disposable: skipping fsync makes every write much cheaper.
			"--unsafe-no-fsync=true",
		}, nil, c.logDir, c.log)
	})
	if err != nil {
		return "", err
	}
	if err := waitHTTPOK(ctx, startTimeout, p, http.DefaultClient, clientURL+"/health", ""); err != nil {
		return "", err
	}
	return clientURL, nil
}

// startAPIServer runs kube-apiserver on a free port of 127.0.0.1, waits for
// /readyz, and sets up the admin kubeconfig, REST config and clientset.
func (c *ControlPlane) startAPIServer(ctx context.Context, binary, etcdURL string) error {
	p, ports, err := c.startListening(ctx, 1, func(ports []int) (*process, error) {
		return startProcess(binAPIServer, binary, c.apiServerArgs(etcdURL, ports[0]), nil, c.logDir, c.log)
	})
	if err != nil {
		return err
	}
	c.url = "https://127.0.0.1:" + strconv.Itoa(ports[0])

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caCertPEMRaw)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	if err := waitHTTPOK(ctx, startTimeout, p, hc, c.url+"/readyz", c.pki.adminToken); err != nil {
		return err
	}

	c.kubecfg = filepath.Join(c.dir, "kubeconfig")
	if err := writeKubeconfig(c.kubecfg, c.url, c.pki.caCertPEMRaw, c.pki.adminToken); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	c.config = &rest.Config{
		Host:            c.url,
		BearerToken:     c.pki.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.caCertPEMRaw},
		QPS:             100,
		Burst:           200,
	}
	c.client, err = kubernetes.NewForConfig(c.config)
	return err
}

// apiServerArgs is kube-apiserver's command line.
func (c *ControlPlane) apiServerArgs(etcdURL string, port int) []string {
	return []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + c.pki.servingCert,
		"--tls-private-key-file=" + c.pki.servingKey,
		// Fill the extension-apiserver-authentication ConfigMap that servers
		// delegating authentication read (they log errors every second while
		// it lacks either CA). No client certificate is ever issued.
		"--client-ca-file=" + c.pki.caCert,
		"--requestheader-client-ca-file=" + c.pki.caCert,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--service-account-key-file=" + c.pki.saPub,
		"--service-account-signing-key-file=" + c.pki.saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--token-auth-file=" + c.pki.tokenFile,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=" + serviceClusterIPRange,
		"--allow-privileged=true",
		// No kubelet reports node conditions here, so the not-ready taint this
		// plugin adds at node creation would never be lifted.
		"--disable-admission-plugins=TaintNodesByCondition",
		// The "kubernetes" Endpoints would point at 127.0.0.1, which Endpoints
		// validation rejects; nothing in the cluster needs them (no kube-proxy).
		"--endpoint-reconciler-type=none",
	}
}
