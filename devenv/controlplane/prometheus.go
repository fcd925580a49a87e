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
	o      PrometheusOptions

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartPrometheus writes dir/prometheus.yml and runs Prometheus with its
// data in dir/data and its log in dir/prometheus.log, on a free port of
// 127.0.0.1, returning once /-/ready answers. dir must be given (a test's
// t.TempDir(): register Stop with t.Cleanup after creating it, so Stop runs
// first). The process runs until Stop or until the program exits.
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
	p := &Prometheus{dir: dir, binary: bins[binPrometheus], log: o.Log, o: o}
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, _, err := startListening(ctx, 1, nil, func(ports []int) (*process, error) {
		p.port = ports[0]
		if err := p.writeConfig(); err != nil {
			return nil, err
		}
		return p.run()
	})
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, proc); err != nil {
		return nil, err
	}
	p.proc = proc
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
// with the same data and configuration, returning once it is ready. The
// port must stay the same (clients know the URL): if another process took
// it meanwhile, Restart fails.
func (p *Prometheus) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, err := p.run()
	if err != nil {
		return err
	}
	if err := proc.waitListening(ctx, listenTimeout, p.port); err != nil {
		proc.stop(stopGrace)
		return err
	}
	if err := p.waitReady(ctx, proc); err != nil {
		return err
	}
	p.proc = proc
	return nil
}

// Reconfigure replaces the scrape targets, extra scrape configuration and
// rule files with those of o (its BinDir and Log are ignored) and has the
// running server reload its configuration: a target can be added once it
// is known, without a restart.
func (p *Prometheus) Reconfigure(ctx context.Context, o PrometheusOptions) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	o.BinDir, o.Log = p.o.BinDir, p.o.Log
	p.o = o
	if err := p.writeConfig(); err != nil {
		return err
	}
	if p.proc == nil {
		return nil // read at the next Restart
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL()+"/-/reload", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reload prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload prometheus: %s: %s", resp.Status, body)
	}
	return nil
}

func (p *Prometheus) writeConfig() error {
	return os.WriteFile(p.configPath(), []byte(prometheusConfig(p.o, p.address())), 0o644)
}

// run starts the server process on p.port.
func (p *Prometheus) run() (*process, error) {
	return startProcess(binPrometheus, p.binary, []string{
		"--config.file=" + p.configPath(),
		"--storage.tsdb.path=" + filepath.Join(p.dir, "data"),
		"--web.listen-address=" + p.address(),
		"--web.enable-lifecycle",
		"--web.enable-admin-api",
		// Scraping starts at the first target reload, 5s after start by default.
		"--scrape.discovery-reload-interval=500ms",
	}, nil, p.dir, p.log)
}

// waitReady waits until the server (known to hold its port) is ready, and
// stops it when it does not get there.
func (p *Prometheus) waitReady(ctx context.Context, proc *process) error {
	if err := waitHTTPOK(ctx, startTimeout, proc, http.DefaultClient, p.URL()+"/-/ready", ""); err != nil {
		proc.stop(stopGrace)
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
