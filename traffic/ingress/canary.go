package ingress

import (
	"fmt"
	"maps"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CanaryName is the name of the canary Ingress of an Ingress.
func CanaryName(ingress string) string { return ingress + "-canary" }

// NewCanary builds the canary Ingress from the stable one: its annotations,
// labels, class and TLS, and only the HTTP paths that lead to the stable
// Service, pointed at the canary Service. Rules left without paths are
// dropped; an Ingress with no path to the stable Service is an error, since
// the canary would receive nothing.
func NewCanary(stable *networkingv1.Ingress, stableService, canaryService string, owner *metav1.OwnerReference) (*networkingv1.Ingress, error) {
	c := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{
			Name:        CanaryName(stable.Name),
			Namespace:   stable.Namespace,
			Labels:      maps.Clone(stable.Labels),
			Annotations: maps.Clone(stable.Annotations),
		},
		Spec: networkingv1.IngressSpec{IngressClassName: stable.Spec.IngressClassName},
	}
	if owner != nil {
		c.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	for _, t := range stable.Spec.TLS {
		c.Spec.TLS = append(c.Spec.TLS, *t.DeepCopy())
	}
	for _, rule := range stable.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		var paths []networkingv1.HTTPIngressPath
		for _, p := range rule.HTTP.Paths {
			if p.Backend.Service == nil || p.Backend.Service.Name != stableService {
				continue
			}
			p = *p.DeepCopy()
			p.Backend.Service.Name = canaryService
			paths = append(paths, p)
		}
		if len(paths) > 0 {
			c.Spec.Rules = append(c.Spec.Rules, networkingv1.IngressRule{
				Host:             rule.Host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}},
			})
		}
	}
	if len(c.Spec.Rules) == 0 {
		return nil, fmt.Errorf("ingress %s has no HTTP path to the stable service %s", stable.Name, stableService)
	}
	return c, nil
}
