package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options configure Start. The zero value is a working configuration.
type Options struct {
	// Dir holds the data, credentials, kubeconfig and logs (logs/<component>.log).
	// When empty, a temporary folder is used and removed by Stop; set Dir to
	// keep the logs of a run. Start always begins with an empty etcd (it
	// removes Dir/etcd); logs are appended to.
	Dir string
	// BinDir holds the binaries; see BinDir() for the default.
	BinDir string
	// Nodes is the number of simulated kwok nodes (default 3), each with
	// 32 CPUs, 256Gi of memory and room for 110 pods.
	Nodes int
	// ExtraStages are kwok Stage YAML documents (one or more per string) added
	// to the built-in node and pod lifecycle. A stage whose metadata.name equals
	// a built-in one replaces it. A Stage without spec.weight gets weight 1, so
	// for a pod it selects it takes precedence over the built-in stages (kwok
	// only considers the matching stages of positive weight when any has one).
	// A Pod stage should therefore select `.metadata.deletionTimestamp`
	// DoesNotExist unless it means to handle deletion itself.
	ExtraStages []string
	// Log, when not nil, also receives every component's output, each line
	// prefixed with "[component] ".
	Log io.Writer
}

// startTimeout bounds each phase of Start (on top of the caller's ctx).
const startTimeout = 90 * time.Second

// ControlPlane is a running etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok on 127.0.0.1. Create it with Start; Stop it.
type ControlPlane struct {
	dir       string
	removeDir bool
	logDir    string
	log       io.Writer
	pki       *pki
	url       string
	apiServer apiServerRun
	// auditPolicy is the API server's audit policy file.
	auditPolicy string
	config      *rest.Config
	client      *kubernetes.Clientset
	kubecfg     string

	mu    sync.Mutex
	procs []*process // in start order

	stopOnce sync.Once
	stopErr  error
}

// Start runs a control plane and returns once it can run pods: the
// apiserver is ready, every simulated node is Ready and schedulable, and the
// default ServiceAccount exists in the default namespace. ctx bounds the
// start only; the processes run until Stop (or until the program exits:
// they are killed with it). On error everything started is stopped and the
// error includes the tail of the failing component's log.
func Start(ctx context.Context, o Options) (_ *ControlPlane, err error) {
	bins, err := findBinaries(o.BinDir, binEtcd, binAPIServer, binControllerManager, binScheduler, binKwok)
	if err != nil {
		return nil, err
	}
	stages, err := kwokStages(o.ExtraStages)
	if err != nil {
		return nil, err
	}
	if o.Nodes <= 0 {
		o.Nodes = 3
	}

	c := &ControlPlane{dir: o.Dir, log: o.Log}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
		}
	}()
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "sluice-controlplane-"); err != nil {
			return nil, err
		}
		c.removeDir = true
	} else if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	if c.dir, err = filepath.Abs(c.dir); err != nil {
		return nil, err
	}
	c.logDir = filepath.Join(c.dir, "logs")

	if c.pki, err = writePKI(filepath.Join(c.dir, "pki")); err != nil {
		return nil, fmt.Errorf("write credentials: %w", err)
	}
	etcdURL, err := c.startEtcd(ctx, bins[binEtcd])
	if err != nil {
		return nil, err
	}
	if err := c.startAPIServer(ctx, bins[binAPIServer], etcdURL); err != nil {
		return nil, err
	}
	if err := c.startControllerManager(bins[binControllerManager]); err != nil {
		return nil, err
	}
	if err := c.startScheduler(bins[binScheduler]); err != nil {
		return nil, err
	}
	if err := c.startKwok(ctx, bins[binKwok], stages); err != nil {
		return nil, err
	}
	if err := c.createNodes(ctx, o.Nodes); err != nil {
		return nil, err
	}
	if err := c.waitNodesReady(ctx); err != nil {
		return nil, err
	}
	if err := c.WaitServiceAccount(ctx, metav1.NamespaceDefault); err != nil {
		return nil, fmt.Errorf("default ServiceAccount: %w", err)
	}
	return c, nil
}

// RESTConfig returns a new admin (system:masters) client configuration,
// authenticated by bearer token, with QPS 100 and Burst 200.
func (c *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(c.config) }

// Client returns an admin clientset.
func (c *ControlPlane) Client() kubernetes.Interface { return c.client }

// KubeconfigPath returns the path of the admin kubeconfig (Dir/kubeconfig).
func (c *ControlPlane) KubeconfigPath() string { return c.kubecfg }

// APIServerURL returns the apiserver's https://127.0.0.1:PORT address.
func (c *ControlPlane) APIServerURL() string { return c.url }

// CACertPEM returns the CA that signed the apiserver's serving certificate
// (also the cluster's root CA, published in kube-root-ca.crt ConfigMaps).
func (c *ControlPlane) CACertPEM() []byte { return append([]byte(nil), c.pki.caCertPEMRaw...) }

// Dir returns the folder holding the data, credentials and logs.
func (c *ControlPlane) Dir() string { return c.dir }

// LogPath returns the log file of a component ("etcd", "kube-apiserver",
// "kube-controller-manager", "kube-scheduler" or "kwok"; "audit" is the
// API server's audit log of deletions).
func (c *ControlPlane) LogPath(component string) string {
	return filepath.Join(c.logDir, component+".log")
}

// PIDs returns the process id of every running component, by name.
func (c *ControlPlane) PIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int, len(c.procs))
	for _, p := range c.procs {
		m[p.name] = p.pid()
	}
	return m
}

// Stop kills every component, in the reverse order of their start, waits
// until they have exited, and removes Dir if Start created it. It is
// idempotent and safe to call from several goroutines.
func (c *ControlPlane) Stop() error {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		procs := c.procs
		c.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop(stopGrace)
		}
		if c.removeDir {
			c.stopErr = os.RemoveAll(c.dir)
		}
	})
	return c.stopErr
}

// start runs a component that listens on no port and registers it for
// Stop.
func (c *ControlPlane) start(name, binary string, env []string, args ...string) (*process, error) {
	p, err := startProcess(name, binary, args, env, c.logDir, c.log)
	if err != nil {
		return nil, err
	}
	c.register(p)
	return p, nil
}

// startListening runs a component on n free ports (see startListening)
// and registers it for Stop.
func (c *ControlPlane) startListening(ctx context.Context, n int, start func(ports []int) (*process, error)) (*process, []int, error) {
	p, ports, err := startListening(ctx, n, nil, start)
	if err != nil {
		return nil, nil, err
	}
	c.register(p)
	return p, ports, nil
}

func (c *ControlPlane) register(p *process) {
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
}

// checkAlive returns an error naming the first component that has exited.
func (c *ControlPlane) checkAlive() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if done, _ := p.exited(); done {
			return p.exitError()
		}
	}
	return nil
}

// WaitServiceAccount waits until the default ServiceAccount of namespace
// exists (created by the serviceaccount controller; pods need it), failing
// early when a component has exited.
func (c *ControlPlane) WaitServiceAccount(ctx context.Context, namespace string) error {
	return WaitFor(ctx, startTimeout, func() (bool, error) {
		if err := c.checkAlive(); err != nil {
			return false, err
		}
		_, err := c.client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}
