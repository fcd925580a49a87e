package v1alpha1

import (
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func copyInt32(p *int32) *int32 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func copyIntOrString(p *intstr.IntOrString) *intstr.IntOrString {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func copyHeaders(in []gatewayv1.HTTPHeaderMatch) []gatewayv1.HTTPHeaderMatch {
	if in == nil {
		return nil
	}
	out := make([]gatewayv1.HTTPHeaderMatch, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

func copyConditions(in []v1beta1.RolloutCondition) []v1beta1.RolloutCondition {
	if in == nil {
		return nil
	}
	out := make([]v1beta1.RolloutCondition, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}
