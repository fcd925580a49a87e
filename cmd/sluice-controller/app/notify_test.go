package app

import (
	"strings"
	"testing"
)

// The --notifications-* flags are checked before anything starts.
func TestNotificationFlagsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" means valid
	}{
		{[]string{"--notifications"}, ""},
		{[]string{"--notifications", "--notifications-attempts=1", "--notifications-backoff=50ms", "--notifications-max-backoff=50ms"}, ""},
		{[]string{"--notifications-attempts=0"}, "--notifications-attempts"},
		{[]string{"--notifications-backoff=2m"}, "--notifications-backoff must be positive and at most --notifications-max-backoff"},
		{[]string{"--notifications-timeout=0s"}, "--notifications-timeout"},
	} {
		o, err := parse(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		err = o.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// --install-analysis-templates takes all, or integrations by name.
func TestInstallAnalysisTemplatesFlag(t *testing.T) {
	all, err := readyMadeTemplates("all")
	if err != nil || len(all) != 10 {
		t.Fatalf("all: %d templates, %v", len(all), err)
	}
	some, err := readyMadeTemplates("ingress-nginx, kube-state-metrics")
	if err != nil || len(some) != 4 || some[0].Name != "nginx-error-rate" {
		t.Errorf("two integrations: %v, %v", some, err)
	}
	if none, err := readyMadeTemplates(""); err != nil || none != nil {
		t.Errorf("none: %v, %v", none, err)
	}
	o, err := parse([]string{"--install-analysis-templates=linkerd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.validate(); err == nil || !strings.Contains(err.Error(), `no integration "linkerd" (want all, or some of envoy-gateway,ingress-nginx,istio,kube-state-metrics,opentelemetry)`) {
		t.Errorf("unknown integration: %v", err)
	}
}
