package controlplane

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeLabel is set (with the value "kwok") on every simulated node.
const NodeLabel = "type"

// nodeCapacity is the capacity (and allocatable) of a simulated node.
var nodeCapacity = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("32"),
	corev1.ResourceMemory: resource.MustParse("256Gi"),
	corev1.ResourcePods:   resource.MustParse("110"),
}

// createNodes creates n nodes named kwok-node-<i> for kwok to manage.
func (c *ControlPlane) createNodes(ctx context.Context, n int) error {
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{kwokNodeAnnotation: kwokNodeValue},
				Labels: map[string]string{
					NodeLabel:                       "kwok",
					corev1.LabelHostname:            name,
					corev1.LabelOSStable:            "linux",
					corev1.LabelArchStable:          "amd64",
					"node-role.kubernetes.io/agent": "",
				},
			},
			Status: corev1.NodeStatus{Capacity: nodeCapacity, Allocatable: nodeCapacity},
		}
		if _, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	return nil
}

// waitNodesReady waits until every kwok node is Ready (kwok reports it) and
// carries no not-ready taint, removing that taint where an admission plugin
// added it (no node lifecycle controller runs here to lift it).
func (c *ControlPlane) waitNodesReady(ctx context.Context) error {
	var pending []string
	err := WaitFor(ctx, startTimeout, func() (bool, error) {
		if err := c.checkAlive(); err != nil {
			return false, err
		}
		nodes, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: NodeLabel + "=kwok"})
		if err != nil {
			return false, nil
		}
		pending = pending[:0]
		for i := range nodes.Items {
			n := &nodes.Items[i]
			if !nodeReady(n) {
				pending = append(pending, n.Name)
				continue
			}
			if tainted := slices.ContainsFunc(n.Spec.Taints, isNotReadyTaint); tainted {
				pending = append(pending, n.Name)
				n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, isNotReadyTaint)
				if _, err := c.client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
					return false, fmt.Errorf("remove not-ready taint from %s: %w", n.Name, err)
				}
			}
		}
		return len(nodes.Items) > 0 && len(pending) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes %v not ready: %w; last lines of %s:\n%s",
			pending, err, c.LogPath(binKwok), fileTail(c.LogPath(binKwok), 20))
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func isNotReadyTaint(t corev1.Taint) bool {
	return t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable
}
