// Package traffic moves traffic between the stable and the new version of
// a workload during a release. The release engine calls it from its step
// state machine; it never writes the Rollout's status, and keeps all its
// state in the routing objects themselves (canary objects, selector keys
// and snapshot annotations), so every call is safe after a restart.
//
// Two parts, each a set of idempotent calls returning done=false while the
// cluster had to change (the engine then stamps lastUpdateTime, waits
// trafficRoutings[].gracePeriodSeconds and calls again):
//
//   - Services: the canary Service <service>-canary that selects the new
//     revision, and the stable Service pinned to the stable revision while
//     traffic is split.
//   - Provider (NewProvider): the routing technology of a TrafficRoutingRef,
//     one folder each: ingress (nginx, higress, aliyun-alb, mse, or a Lua
//     classType), gateway (HTTPRoute) and custom (Lua over any object,
//     built in for Istio VirtualService and DestinationRule).
//
// See docs/traffic.md for the call sequence of a release and what Sluice
// does differently from Kruise Rollout.
package traffic

// The manager reads and writes the routing objects of every Rollout.
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;update;patch
