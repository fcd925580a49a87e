package invariants

import (
	"testing"
	"time"
)

func TestStreams(t *testing.T) {
	var gaps []Gap
	s := newStreams(2*time.Second, func(g Gap) { gaps = append(gaps, g) })
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

	s.listed(Pod, 100, map[string]uint64{"web-1": 90}, t0)
	s.watching(Pod, true, t0)
	s.listed(Rollout, 100, map[string]uint64{"web": 95}, t0)
	s.watching(Rollout, true, t0)
	if len(gaps) != 0 {
		t.Fatalf("the first lists are no gap: %v", gaps)
	}
	if s.settled(t0.Add(time.Second)) || !s.settled(t0.Add(2*time.Second)) {
		t.Error("settled only once every watch ran for the settle time")
	}
	s.delivered(Rollout, "web", 120, false)

	// The watch breaks and resumes where it stopped: no gap.
	s.watching(Rollout, false, t0.Add(3*time.Second))
	if s.settled(t0.Add(4 * time.Second)) {
		t.Error("settled while a watch is down")
	}
	s.watching(Rollout, true, t0.Add(4*time.Second))
	if s.settled(t0.Add(5*time.Second)) || !s.settled(t0.Add(6*time.Second)) {
		t.Error("a resumed watch settles after the settle time")
	}

	// It cannot resume: the informer lists again. Nothing changed
	// meanwhile (etcd's revision moved for other objects): no gap.
	s.listed(Rollout, 140, map[string]uint64{"web": 120}, t0.Add(7*time.Second))
	if len(gaps) != 0 {
		t.Fatalf("gaps %v, want none: nothing of the kind was missed", gaps)
	}
	// The Rollout changed unseen: a gap.
	s.listed(Rollout, 150, map[string]uint64{"web": 145}, t0.Add(8*time.Second))
	if len(gaps) != 1 || gaps[0].Kind != Rollout || gaps[0].After != 140 || gaps[0].Listed != 150 {
		t.Fatalf("gaps %v, want the Rollouts' changes after rv 140 up to 150", gaps)
	}
	// One appeared, one went: gaps too.
	s.listed(Rollout, 160, map[string]uint64{"web": 145, "api": 155}, t0.Add(9*time.Second))
	s.delivered(Rollout, "api", 155, false)
	s.listed(Rollout, 170, map[string]uint64{"web": 145}, t0.Add(10*time.Second))
	if len(gaps) != 3 {
		t.Errorf("gaps %v, want an appearance and a deletion found", gaps)
	}
}
