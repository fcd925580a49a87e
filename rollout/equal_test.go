package rollout

import (
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func equalRollout(a, b *v1beta1.Rollout) bool     { return equality.Semantic.DeepEqual(a, b) }
func equalStatus(a, b v1beta1.RolloutStatus) bool { return equality.Semantic.DeepEqual(a, b) }
