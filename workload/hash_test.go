package workload

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// realTemplate is a Deployment's pod template as kube-apiserver v1.37
// stored it (defaults filled in), and realHash the pod-template-hash that
// kube-controller-manager's Deployment controller gave its ReplicaSet:
// both read from the local control plane (devenv/controlplane).
const (
	realTemplate = `{"metadata":{"labels":{"app":"echoserver"}},"spec":{"containers":[{"name":"echoserver","image":"openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2","ports":[{"containerPort":8080,"protocol":"TCP"}],"env":[{"name":"NODE_NAME","value":"version1"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}}`
	realHash     = "56f5cd4d8b"
)

func TestTemplateHashMatchesTheDeploymentController(t *testing.T) {
	var tpl corev1.PodTemplateSpec
	if err := json.Unmarshal([]byte(realTemplate), &tpl); err != nil {
		t.Fatal(err)
	}
	if got := TemplateHash(&tpl, nil); got != realHash {
		t.Errorf("TemplateHash = %s, the Deployment controller gave %s", got, realHash)
	}
	// The hash follows the template and the collision count.
	zero, one := int32(0), int32(1)
	other := tpl.DeepCopy()
	other.Spec.Containers[0].Image = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
	for name, got := range map[string]string{
		"another image":     TemplateHash(other, nil),
		"collision count 0": TemplateHash(&tpl, &zero),
		"collision count 1": TemplateHash(&tpl, &one),
	} {
		if got == realHash {
			t.Errorf("%s: hash %s unchanged", name, got)
		}
	}
}
