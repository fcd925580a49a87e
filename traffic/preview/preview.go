// Package preview shows what a release's traffic routing will do to the
// routing objects, step by step, without changing them: it makes the
// traffic calls the release engine makes (package traffic: the canary and
// stable Services, the provider of the Ingress, HTTPRoute or custom
// objects) on an in-memory copy of the objects they read from the
// cluster, and compares each object before and after every step. The
// rules of each routing technology are the traffic package's own, run as
// they are, Lua scripts included; nothing here repeats them.
//
// The calls follow the release engine's order (rollout/decide_traffic.go
// and rollout/decide_finalise.go): before the steps the routing is
// initialised; at each step the stable Service is pinned to the stable
// revision (restored instead where every pod is replaced in place, and
// traffic sent back to stable first when the step routes none), then the
// canary Service selects the new revision and the step's route is applied;
// after the last step the success order gives the routing back.
package preview

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

// Release is the release to preview.
type Release struct {
	Rollout *v1beta1.Rollout
	// Replicas is the workload's size: it decides whether a step replaces
	// every pod in place.
	Replicas int32
	// RevisionLabel tells revisions apart (traffic.PodTemplateHashLabel
	// or ControllerRevisionHashLabel).
	RevisionLabel string
	// Stable and New are the revisions; New may be a placeholder when the
	// next template is not known.
	Stable, New string
	// Scripts are the Lua scripts of the manager's namespace; nil means
	// the built-in ones only.
	Scripts script.Source
}

// Phase is one part of the release and what it does to the routing.
type Phase struct {
	// Step is the 1-based step; 0 before the steps (Initialize) and
	// len(steps)+1 after them.
	Step int32
	// Route is what the step asks of the routing (nil when it asks
	// nothing or is not a step).
	Route *route.Route
	// Changes are the objects the phase creates, changes or deletes.
	Changes []Change
	// Err is the call that failed, if one did: the release would stop
	// there (errors.Is(Err, traffic.ErrUnsupported) when the routing
	// cannot express the step).
	Err error
}

// Plan is a release's routing, phase by phase.
type Plan struct {
	Phases []Phase
}

// maxRepeats bounds how often one call is repeated until it reports done:
// each call is done after at most two (change, then confirm).
const maxRepeats = 5

// call is one traffic call.
type call struct {
	name string
	do   func(context.Context) (bool, error)
}

// phaseCalls are the calls of one phase.
type phaseCalls struct {
	step  int32
	route *route.Route
	calls []call
}

// Routing previews the routing of r with live as the cluster (read only);
// ok=false when the Rollout routes no traffic. scheme must know the typed
// objects the traffic package reads (Services, Ingresses).
func Routing(ctx context.Context, live client.Reader, scheme *runtime.Scheme, r Release) (p Plan, ok bool, err error) {
	ro := r.Rollout
	o, ok := traffic.ForRollout(ro, r.RevisionLabel, r.Scripts)
	if !ok {
		return Plan{}, false, nil
	}
	mem := newOverlay(live, scheme)
	svc := traffic.NewServices(mem, o)
	provider, err := traffic.NewProvider(mem, o)
	if err != nil {
		return Plan{}, true, err
	}
	s := &ro.Spec.Strategy
	steps := s.Steps()

	phases := []phaseCalls{{step: 0, calls: []call{{"initialize the routing", func(ctx context.Context) (bool, error) { return true, provider.Initialize(ctx) }}}}}
	for i, st := range steps {
		n := int32(i + 1)
		var calls []call
		if !st.HasRoute() {
			calls = append(calls, call{"send all traffic to stable", provider.Finalise})
		}
		allNewInPlace := !s.IsBlueGreen() && !s.ExtraCanaryWorkload() && st.ReplicasFor(r.Replicas) >= r.Replicas
		if allNewInPlace {
			calls = append(calls, call{"restore the stable Service", svc.RestoreStable})
		} else {
			calls = append(calls, call{"pin the stable Service to the stable revision", func(ctx context.Context) (bool, error) { return svc.PinStable(ctx, r.Stable) }})
		}
		var rt *route.Route
		if st.HasRoute() {
			x, err := route.FromStep(st.TrafficRoutingStrategy)
			if err != nil {
				return Plan{}, true, fmt.Errorf("step %d: %w", n, err)
			}
			rt = &x
			calls = append(calls,
				call{"point the canary Service at the new revision", func(ctx context.Context) (bool, error) { return svc.EnsureCanary(ctx, r.New) }},
				call{"route the step's traffic", func(ctx context.Context) (bool, error) { return provider.EnsureRoutes(ctx, x) }})
		}
		phases = append(phases, phaseCalls{n, rt, calls})
	}
	var end []call
	if s.IsBlueGreen() {
		all := route.Route{Weight: route.Weight(100)}
		end = append(end,
			call{"point the canary Service at the new revision", func(ctx context.Context) (bool, error) { return svc.EnsureCanary(ctx, r.New) }},
			call{"send all traffic to the new version", func(ctx context.Context) (bool, error) { return provider.EnsureRoutes(ctx, all) }})
	}
	end = append(end,
		call{"restore the stable Service", svc.RestoreStable},
		call{"send all traffic to stable", provider.Finalise},
		call{"remove the canary Service", svc.RemoveCanary})
	phases = append(phases, phaseCalls{int32(len(steps) + 1), nil, end})

	for _, ph := range phases {
		out := Phase{Step: ph.step, Route: ph.route}
		before, err := snapshot(ctx, mem)
		if err != nil {
			return p, true, err
		}
		for _, c := range ph.calls {
			if err := repeat(ctx, c); err != nil {
				out.Err = err
				break
			}
		}
		after, err := snapshot(ctx, mem)
		if err != nil {
			return p, true, err
		}
		out.Changes = diff(mem, before, after)
		p.Phases = append(p.Phases, out)
		if out.Err != nil {
			break // the release would hold here
		}
	}
	return p, true, nil
}

// repeat makes a call until it reports done.
func repeat(ctx context.Context, c call) error {
	for range maxRepeats {
		done, err := c.do(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("%s: still not done after %d calls", c.name, maxRepeats)
}

// ErrUnsupported marks a step the routing cannot express.
var ErrUnsupported = traffic.ErrUnsupported

// Unsupported reports whether err says the routing cannot express a step.
func Unsupported(err error) bool { return errors.Is(err, traffic.ErrUnsupported) }
