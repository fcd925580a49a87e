package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PrometheusOptions configure StartPrometheus.
type PrometheusOptions struct {
	// BinDir holds the prometheus binary; see BinDir() for the default.
	BinDir string
	// ScrapeInterval is the global scrape (and rule evaluation) interval;
	// default 1s.
	ScrapeInterval time.Duration
	// JobName is the job of Targets (default "e2e"). Prometheus also always
	// scrapes itself, in job "prometheus".
	JobName string
	// Targets are host:port addresses scraped over HTTP at /metrics.
	Targets []string
	// ExtraScrapeConfigYAML is appended to scrape_configs as is: YAML list
	// items starting at column 0, e.g. "- job_name: x\n  static_configs: ...".
	ExtraScrapeConfigYAML string
	// RuleFiles are alerting and recording rule files Prometheus loads
	// (absolute paths), evaluated every ScrapeInterval.
	RuleFiles []string
	// Log, when not nil, also receives Prometheus's output, each line
	// prefixed with "[prometheus] ".
	Log io.Writer
}

// Prometheus is a Prometheus server on 127.0.0.1, which can be stopped and
// restarted on the same port with the same data.
type Prometheus struct {
	dir    string
	binary string
	port   int
	log    io.Writer

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartPrometheus writes dir/prometheus.yml and runs Prometheus with its
// data in dir/data and its log in dir/prometheus.log, on a free port of
// 127.0.0.1, returning once /-/ready answers. dir must be given (a test's
// t.TempDir(): register Stop with t.Cleanup after creating it, so Stop runs
// first). The process runs until Stop or until the test binary exits.
func StartPrometheus(ctx context.Context, dir string, o PrometheusOptions) (*Prometheus, error) {
	if dir == "" {
		return nil, errors.New("StartPrometheus: dir is required")
	}
	bins, err := findBinaries(o.BinDir, binPrometheus)
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &Prometheus{dir: dir, binary: bins[binPrometheus], port: port, log: o.Log}
	if err := os.WriteFile(p.configPath(), []byte(prometheusConfig(o, p.address())), 0o644); err != nil {
		return nil, err
	}
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// URL returns the base address of the HTTP API, http://127.0.0.1:PORT.
// It stays the same across Restart.
func (p *Prometheus) URL() string { return "http://" + p.address() }

// Dir returns the folder holding the configuration, data and log.
func (p *Prometheus) Dir() string { return p.dir }

// PID returns the process id of the running server, or 0 when stopped.
func (p *Prometheus) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.pid()
}

// Stop terminates the server gracefully (so its data is flushed) and waits
// for it to exit. It keeps the data; calling it again is a no-op.
func (p *Prometheus) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return nil
	}
	p.proc.stop(15 * time.Second)
	p.proc = nil
	return nil
}

// Restart stops the server if it runs and starts it again on the same port
// with the same data and configuration, returning once it is ready.
func (p *Prometheus) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.start(ctx)
}

func (p *Prometheus) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		return errors.New("prometheus is already running")
	}
	proc, err := startProcess(binPrometheus, p.binary, []string{
		"--config.file=" + p.configPath(),
		"--storage.tsdb.path=" + filepath.Join(p.dir, "data"),
		"--web.listen-address=" + p.address(),
		"--web.enable-lifecycle",
		"--web.enable-admin-api",
		// Scraping starts at the first target reload, 5s after start by default.
		"--scrape.discovery-reload-interval=500ms",
	}, nil, p.dir, p.log)
	if err != nil {
		return err
	}
	p.proc = proc
	if err := waitHTTPOK(ctx, startTimeout, proc, http.DefaultClient, p.URL()+"/-/ready", ""); err != nil {
		proc.stop(stopGrace)
		p.proc = nil
		return err
	}
	return nil
}

func (p *Prometheus) address() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

func (p *Prometheus) configPath() string { return filepath.Join(p.dir, "prometheus.yml") }

// prometheusConfig renders prometheus.yml for o; self is Prometheus's own
// address.
func prometheusConfig(o PrometheusOptions, self string) string {
	interval := o.ScrapeInterval
	if interval <= 0 {
		interval = time.Second
	}
	job := o.JobName
	if job == "" {
		job = "e2e"
	}
	ms := strconv.FormatInt(interval.Milliseconds(), 10) + "ms"
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", ms, ms)
	if len(o.RuleFiles) > 0 {
		b.WriteString("rule_files:\n")
		for _, f := range o.RuleFiles {
			fmt.Fprintf(&b, "- %q\n", f)
		}
	}
	fmt.Fprintf(&b, "scrape_configs:\n- job_name: prometheus\n  static_configs:\n  - targets: [%q]\n", self)
	if len(o.Targets) > 0 {
		quoted := make([]string, len(o.Targets))
		for i, t := range o.Targets {
			quoted[i] = strconv.Quote(t)
		}
		fmt.Fprintf(&b, "- job_name: %q\n  static_configs:\n  - targets: [%s]\n", job, strings.Join(quoted, ", "))
	}
	if extra := strings.Trim(o.ExtraScrapeConfigYAML, "\r\n"); strings.TrimSpace(extra) != "" {
		b.WriteString(extra)
		b.WriteString("\n")
	}
	return b.String()
}
