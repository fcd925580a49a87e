package invariants

import (
	"fmt"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// checkRelease evaluates the invariants of an open release: 1, 2, 4, 6
// and the time bound of 7.
func (m *Model) checkRelease(t *tracker, f workloadFacts, tf trafficFacts) {
	m.signals(t, f)
	r, st := t.rel, t.ro.Status
	steps := t.ro.steps()
	n := int32(len(steps))
	subject := t.subject()
	if n == 0 {
		return
	}
	m.current = r
	defer func() { m.current = nil }()
	if r.unseen != "" {
		m.checkEnds(t, r, f, tf)
		return
	}
	// The step the status claims: 0 until the Rollout shows this release.
	s := int32(0)
	if r.ack {
		s = min(max(st.Step, 1), n)
	}
	next := nextStep(s, n, st.Next)
	completed := r.ack && st.State == string(v1beta1.CanaryStepStateCompleted)
	stepped := !r.cancelled && !r.finishing && !completed
	forward := stepped && !r.aborted && r.suspended == ""

	if f.known {
		if r.maxNew < 0 {
			r.maxNew = f.newPods
		}
		dropped := forward && f.newPods < r.maxNew
		m.check(ForwardOnly, subject, dropped, 0, func() string {
			return fmt.Sprintf("the new version's pods of %s went down from %d to %d during a forward release (status step %d %s)",
				t.workloadName(), r.maxNew, f.newPods, st.Step, st.State)
		})
		var excuse *verdict
		for _, v := range r.verdicts {
			if v.active && v.policy != analysisv1alpha1.PolicyRollback {
				excuse = v
			}
		}
		m.check(AnalysisVerdict, subject+" (rollback)", dropped && excuse != nil, 0, func() string {
			return fmt.Sprintf("AnalysisRun %s ended %s (policy %s), and the new version's pods then went down from %d to %d: a rollback the policy does not allow",
				excuse.run, excuse.phase, excuse.policy, r.maxNew, f.newPods)
		})
		if forward {
			r.maxNew = max(r.maxNew, f.newPods)
		} else {
			r.maxNew = f.newPods
		}

		// Worked example: 10 replicas, maxSurge 25% → 3, steps 1, 50%,
		// 100%. At step 1 the next step allows 5 + 3 = 8 new pods at most
		// (beyond is StepAllowance at once); above 1 + 3 = 4 for longer
		// than the lag bound is StatusLag.
		nextAllowed := stepReplicas(steps, next, f.replicas) + f.surge
		m.check(StepAllowance, subject, stepped && f.newPods > int(nextAllowed), 0, func() string {
			return fmt.Sprintf("%d new-version pods of %s, above what even step %d allows: %s + maxSurge %d = %d (status: step %d %s)",
				f.newPods, t.workloadName(), next, describeStep(steps, next, f.replicas), f.surge, nextAllowed, st.Step, st.State)
		})
		allowed := stepReplicas(steps, s, f.replicas) + f.surge
		m.check(StatusLag, subject, stepped && f.newPods > int(allowed), m.bounds.Lag, func() string {
			return fmt.Sprintf("%d new-version pods of %s while the status claims step %d %s, which allows %s + maxSurge %d = %d",
				f.newPods, t.workloadName(), s, st.State, describeStep(steps, s, f.replicas), f.surge, allowed)
		})
	}

	if tf.routed {
		// Until the Rollout shows a replacing release, the routing in place
		// is the replaced one's, judged by the step the status still shows.
		ts, tnext := s, next
		if !r.ack && r.replaced {
			ts = min(max(st.Step, 1), n)
			tnext = nextStep(ts, n, st.Next)
		}
		traffic := stepTraffic(steps, ts)
		// Between two steps the weight is either step's. A step without a
		// route takes the weight back to 0 (Kruise's finalising) after the
		// status shows it, so the previous step's weight is allowed there
		// too, for no longer than the lag bound (below).
		bound := max(traffic, stepTraffic(steps, tnext))
		if len(steps) > 0 && !steps[min(int(max(ts, 1)), len(steps))-1].HasRoute() {
			bound = max(bound, stepTraffic(steps, ts-1))
		}
		m.check(TrafficWithinStep, subject, stepped && tf.canaryWeight > bound, 0, func() string {
			return fmt.Sprintf("canary weight %g%% (%s) above even the %g%% of step %d or its neighbours (status: step %d %s)", tf.canaryWeight, tf.what, bound, ts, st.Step, st.State)
		})
		m.check(TrafficWithinStep, subject+" (lag)", stepped && tf.canaryWeight > traffic, m.bounds.Lag, func() string {
			return fmt.Sprintf("canary weight %g%% (%s) while the status claims step %d %s, whose traffic is %g%%", tf.canaryWeight, tf.what, ts, st.State, traffic)
		})
	}

	for _, v := range r.verdicts {
		if !v.active {
			continue
		}
		holding := v.policy == analysisv1alpha1.PolicyRollback || v.policy == analysisv1alpha1.PolicyPause && !v.approved
		advanced := r.ack && !v.completed && (st.Step > v.atStep || completed) && !r.cancelled
		m.check(AnalysisVerdict, subject+" (advance after "+v.run+")", holding && advanced, 0, func() string {
			return fmt.Sprintf("AnalysisRun %s (step %d) ended %s, whose policy is %s, and the release then advanced from step %d to step %d %s",
				v.run, v.step, v.phase, v.policy, v.atStep, st.Step, st.State)
		})
		// Once a person approved past the verdict the release goes on; at
		// the last step that is its end, and traffic returns to the stable
		// Service (which then selects the new version): not a rollback.
		withdrawn := v.policy != analysisv1alpha1.PolicyRollback && !v.approved && forward && st.Step == v.atStep && tf.canaryWeight < v.weight
		m.check(AnalysisVerdict, subject+" (traffic after "+v.run+")", withdrawn, 0, func() string {
			return fmt.Sprintf("AnalysisRun %s ended %s, whose policy is %s, and the canary weight then went down from %g%% to %g%% at the same step: a rollback the policy does not allow",
				v.run, v.phase, v.policy, v.weight, tf.canaryWeight)
		})
	}

	m.checkEnds(t, r, f, tf)
}

// checkEnds is invariant 7a: the release ends within the release bound.
func (m *Model) checkEnds(t *tracker, r *release, f workloadFacts, tf trafficFacts) {
	if r.aborted && !r.ended && f.known && f.newPods == 0 && !tf.canaryTraffic() {
		r.ended = true
		m.note(fmt.Sprintf("release of %s rolled back: no new-version pod, no canary traffic", t.workloadName()))
	}
	st := t.ro.Status
	m.check(ReleaseEnds, t.subject(), !r.ended && m.now.Sub(r.started) > m.bounds.Release, 0, func() string {
		return fmt.Sprintf("the release of %s began at %s and has neither completed, rolled back nor been cancelled after %s (status: phase %s, step %d %s)",
			t.workloadName(), r.started.Format("15:04:05.000"), m.bounds.Release, st.Phase, st.Step, st.State)
	})
}

// nextStep is the furthest step one reconcile may act for while the
// status says step s: the next one, or further if a user patched
// nextStepIndex forward.
func nextStep(s, n, next int32) int32 {
	k := min(s+1, n)
	if next > k && next <= n {
		k = next
	}
	return k
}

func describeStep(steps []v1beta1.CanaryStep, k, replicas int32) string {
	if k <= 0 {
		return "no step yet: 0"
	}
	s := steps[min(int(k), len(steps))-1]
	if s.Replicas == nil {
		return fmt.Sprintf("step %d: all %d replicas", k, replicas)
	}
	return fmt.Sprintf("step %d replicas %s of %d → %d", k, s.Replicas.String(), replicas, stepReplicas(steps, k, replicas))
}

// availability is invariant 3's state for one workload: armed once every
// replica has been ready, disarmed by a scale-up until it is again.
type availability struct {
	uid      string
	replicas int32
	armed    bool
}

func (m *Model) checkAvailability(w *workloadView, f workloadFacts) {
	key := w.Kind.String() + "/" + w.Name
	a := m.armed[key]
	if a == nil || a.uid != string(w.UID) {
		a = &availability{uid: string(w.UID), replicas: w.Replicas}
		m.armed[key] = a
	}
	if w.Replicas > a.replicas {
		a.armed = false
	}
	a.replicas = w.Replicas
	if !a.armed && w.Replicas > 0 && f.ready >= int(w.Replicas) {
		a.armed = true
	}
	// Worked example: 10 replicas, maxUnavailable 25% → 2: at least 8 ready.
	floor := int(w.Replicas - f.unavailable)
	m.check(Availability, key, a.armed && f.promise && !w.Deleting && f.ready < floor, 0, func() string {
		return fmt.Sprintf("%d ready pods, below replicas %d − maxUnavailable %d = %d", f.ready, w.Replicas, f.unavailable, floor)
	})
}

// checkTrafficReady is invariant 5: the canary Service has a ready
// endpoint whenever the routing sends it requests; the stable Service,
// once it has served, selects a ready pod whenever it is sent requests.
func (m *Model) checkTrafficReady(tf trafficFacts) {
	if !tf.routed {
		return
	}
	if tf.canary != "" {
		ready := m.world.readyEndpoints(tf.canary)
		m.check(TrafficReady, "Service "+tf.canary, tf.canaryTraffic() && ready == 0, 0, func() string {
			return fmt.Sprintf("canary traffic (%s) to Service %s, which has no ready endpoint in its EndpointSlices", tf.what, tf.canary)
		})
	}
	svc := m.world.service(tf.stable)
	var selector map[string]string
	if svc != nil {
		selector = svc.Selector
	}
	ready := m.world.readySelected(selector)
	if tf.stableServed && ready > 0 {
		m.served[tf.stable] = true
	}
	m.check(TrafficReady, "Service "+tf.stable, m.served[tf.stable] && tf.stableServed && ready == 0, 0, func() string {
		if svc == nil {
			return fmt.Sprintf("the stable Service %s receives traffic and does not exist", tf.stable)
		}
		return fmt.Sprintf("the stable Service %s receives traffic and its selector %s selects no ready pod", tf.stable, labelString(selector))
	})
}
