package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// managerPrometheus is the Prometheus the manager gives metrics that name
// no address: its --prometheus-address and --prometheus-auth-* flags.
type managerPrometheus struct {
	address string
	// auth is nil without --prometheus-auth-secret; its Secret is in the
	// manager's namespace.
	auth *analysisv1alpha1.PrometheusAuthentication
	// from names where they were read.
	from string
}

// managerFlags reads the manager's Prometheus flags from its arguments,
// in either form (--flag=value, --flag value); ok is false without
// --prometheus-address.
func managerFlags(args []string) (address string, auth *analysisv1alpha1.PrometheusAuthentication, ok bool) {
	a := analysisv1alpha1.PrometheusAuthentication{}
	fields := map[string]*string{
		"prometheus-address":               &address,
		"prometheus-auth-secret":           &a.SecretName,
		"prometheus-auth-bearer-token-key": &a.BearerTokenKey,
		"prometheus-auth-username-key":     &a.UsernameKey,
		"prometheus-auth-password-key":     &a.PasswordKey,
		"prometheus-auth-ca-key":           &a.CAKey,
	}
	for i := 0; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		field, known := fields[name]
		if !known {
			continue
		}
		if !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		*field = value
	}
	if address == "" {
		return "", nil, false
	}
	if a.SecretName != "" {
		auth = &a
	}
	return address, auth, true
}

// findManagerPrometheus reads the manager's Deployment in namespace (the
// Helm chart's, or any whose container has --prometheus-address) for its
// Prometheus flags. found is false when there is none or it may not be
// read.
func findManagerPrometheus(ctx context.Context, c client.Reader, namespace string) (managerPrometheus, bool) {
	var list appsv1.DeploymentList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return managerPrometheus{}, false
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	for _, d := range list.Items {
		for _, ct := range d.Spec.Template.Spec.Containers {
			args := append(append([]string{}, ct.Command...), ct.Args...)
			if address, auth, ok := managerFlags(args); ok {
				return managerPrometheus{address: address, auth: auth,
					from: fmt.Sprintf("the manager's --prometheus-address, Deployment %s/%s", namespace, d.Name)}, true
			}
		}
	}
	return managerPrometheus{}, false
}
