package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

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
func (c *ControlPlane) startAPIServer(ctx context.Context, binary, etcdURL string) (err error) {
	if c.auditPolicy, err = c.writeAuditPolicy(); err != nil {
		return err
	}
	p, ports, err := c.startListening(ctx, 1, func(ports []int) (*process, error) {
		return startProcess(binAPIServer, binary, c.apiServerArgs(etcdURL, ports[0]), nil, c.logDir, c.log)
	})
	if err != nil {
		return err
	}
	c.apiServer = apiServerRun{binary: binary, etcdURL: etcdURL, port: ports[0]}
	c.url = "https://127.0.0.1:" + strconv.Itoa(ports[0])
	if err := c.waitAPIServerReady(ctx, p); err != nil {
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

// waitAPIServerReady waits until the apiserver process p answers /readyz.
func (c *ControlPlane) waitAPIServerReady(ctx context.Context, p *process) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caCertPEMRaw)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	return waitHTTPOK(ctx, startTimeout, p, hc, c.url+"/readyz", c.pki.adminToken)
}

// apiServerRun is how kube-apiserver was started, to start it again.
type apiServerRun struct {
	binary, etcdURL string
	port            int
}

// restartAttempts bounds how often RestartAPIServer tries to bind the
// port again while the old process's socket is still being released.
const restartAttempts = 10

// RestartAPIServer stops kube-apiserver (SIGTERM, as an upgrade of the
// control plane does; SIGKILL after a grace period) and starts it again on
// the same port with the same flags, returning once it is ready again.
// Every client keeps working with the configuration it has (address,
// certificates and tokens are unchanged) once it reconnects; watches are
// cut and resumed. kube-scheduler and kwok are started again once it is
// back (see restartPodHandlers). It fails if another process took the port
// meanwhile.
func (c *ControlPlane) RestartAPIServer(ctx context.Context) error {
	idx, old := c.proc(binAPIServer)
	if old == nil {
		return errors.New("RestartAPIServer: kube-apiserver is not running")
	}
	old.stop(stopGrace)
	run := c.apiServer
	var last error
	for range restartAttempts {
		p, err := startProcess(binAPIServer, run.binary, c.apiServerArgs(run.etcdURL, run.port), nil, c.logDir, c.log)
		if err != nil {
			return err
		}
		if last = p.waitListening(ctx, listenTimeout, run.port); last == nil {
			c.mu.Lock()
			c.procs[idx] = p
			c.mu.Unlock()
			if err := c.waitAPIServerReady(ctx, p); err != nil {
				return err
			}
			return c.restartPodHandlers()
		}
		p.stop(stopGrace)
		if !errors.Is(last, ErrAddressInUse) {
			return last
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-apiserver could not listen on its port %d again: %w", run.port, last)
}

// restartPodHandlers restarts kube-scheduler and kwok once kube-apiserver
// is back. A kubelet outlives an API server restart; in one long chaos run
// (2026-12-01) no pod was scheduled or made ready for the 13 minutes after
// one (kwok's pod handling stopped, and kube-scheduler reported its cache
// corrupted), which stalled every release. They simulate the cluster; they
// are not under test: started again, they resync from the API server and
// carry on (pods keep their state; kwok's delays restart).
func (c *ControlPlane) restartPodHandlers() error {
	for _, name := range []string{binScheduler, binKwok} {
		idx, old := c.proc(name)
		if old == nil {
			continue
		}
		old.stop(stopGrace)
		p, err := startProcess(old.name, old.binary, old.args, old.env, c.logDir, c.log)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.procs[idx] = p
		c.mu.Unlock()
	}
	return nil
}

// proc is the running component named name and its index in c.procs, or
// nil.
func (c *ControlPlane) proc(name string) (int, *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx := slices.IndexFunc(c.procs, func(p *process) bool { return p.name == name })
	if idx < 0 {
		return idx, nil
	}
	return idx, c.procs[idx]
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
		// Who deleted which pod or workload (see Deletions).
		"--audit-policy-file=" + c.auditPolicy,
		"--audit-log-path=" + c.AuditLogPath(),
		"--audit-log-format=json",
	}
}
