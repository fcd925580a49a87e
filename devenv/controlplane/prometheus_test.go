package controlplane

import (
	"testing"

	"sigs.k8s.io/yaml"
)

func TestPrometheusConfig(t *testing.T) {
	got := prometheusConfig(PrometheusOptions{
		Targets:               []string{"127.0.0.1:9000"},
		ExtraScrapeConfigYAML: "\n- job_name: extra\n  static_configs:\n  - targets: [a:1]\n",
	}, "127.0.0.1:9090")
	var cfg struct {
		Global        map[string]string
		ScrapeConfigs []struct {
			JobName       string                       `json:"job_name"`
			StaticConfigs []struct{ Targets []string } `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(got), &cfg); err != nil {
		t.Fatalf("%v:\n%s", err, got)
	}
	if cfg.Global["scrape_interval"] != "1000ms" || len(cfg.ScrapeConfigs) != 3 ||
		cfg.ScrapeConfigs[0].StaticConfigs[0].Targets[0] != "127.0.0.1:9090" ||
		cfg.ScrapeConfigs[1].JobName != "e2e" || cfg.ScrapeConfigs[2].JobName != "extra" {
		t.Errorf("unexpected config:\n%s", got)
	}
}
