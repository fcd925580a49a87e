package cli

import (
	"testing"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// The manager's Prometheus flags are read in either form, as the Helm
// chart writes them and as a person might; without an address, none.
func TestManagerFlags(t *testing.T) {
	address, auth, ok := managerFlags([]string{
		"--namespace=sluice-system", "--leader-elect=true",
		"--prometheus-address=https://prometheus.monitoring:9090",
		"--prometheus-auth-secret=prometheus-auth", "--prometheus-auth-bearer-token-key", "token",
		"--prometheus-auth-ca-key=ca.crt",
	})
	want := analysisv1alpha1.PrometheusAuthentication{SecretName: "prometheus-auth", BearerTokenKey: "token", CAKey: "ca.crt"}
	if !ok || address != "https://prometheus.monitoring:9090" || auth == nil || *auth != want {
		t.Errorf("got %q %+v %v", address, auth, ok)
	}

	address, auth, ok = managerFlags([]string{"/sluice-controller", "--prometheus-address", "http://prometheus.monitoring.svc:9090"})
	if !ok || address != "http://prometheus.monitoring.svc:9090" || auth != nil {
		t.Errorf("without credentials: got %q %+v %v", address, auth, ok)
	}

	if _, _, ok := managerFlags([]string{"--namespace=sluice-system", "prometheus-address=x"}); ok {
		t.Error("no --prometheus-address flag, yet found")
	}
}
