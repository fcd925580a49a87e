//go:build e2e

package chaos_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// size is how much chaos a run makes. The run goes on until every target
// is reached (and fails if it takes longer than timeout).
type size struct {
	name  string
	lanes []laneSpec
	// releases is the number of releases to begin (replacements mid-release
	// included), perLane the releases each lane must complete at least.
	releases, perLane int
	// kills: SIGKILLs of the manager (solo kills and leader kills);
	// failovers: leader kills and stops the other replica took over from;
	// stops: graceful stops of the leader among them; apiServerRestarts;
	// defaultLeaseFailovers: leader kills with controller-runtime's
	// default lease timings.
	kills, failovers, stops, apiServerRestarts, defaultLeaseFailovers int
	// soloEra is how long one manager is killed every 1–6s before the
	// pair takes over; pairEra is how many leader disruptions a pair era
	// has.
	soloEra time.Duration
	pairEra int
	// promPass and promFault are how long Prometheus answers well, then
	// misbehaves, in turn.
	promPass, promFault [2]time.Duration
	// releaseBound is the longest a release may take.
	releaseBound time.Duration
	timeout      time.Duration
}

// chaosSize is the short run of make test, or with SLUICE_CHAOS=full the
// long run of make chaos: at least as demanding as what was measured from
// outside (127 releases, 133 SIGKILLs, 5 namespaces at once). Each
// target can be overridden: SLUICE_CHAOS_RELEASES, _PER_LANE, _KILLS,
// _FAILOVERS, _STOPS, _APISERVER_RESTARTS, _DEFAULT_LEASE_FAILOVERS; and
// SLUICE_CHAOS_LANES names the lanes to run (e.g. cloneset,statefulset).
func chaosSize() (size, error) {
	var s size
	switch mode := os.Getenv("SLUICE_CHAOS"); mode {
	case "", "short":
		s = size{
			name: "short", lanes: allLanes()[:3], releases: 6, perLane: 1,
			kills: 4, failovers: 2, stops: 1, apiServerRestarts: 1,
			soloEra: 15 * time.Second, pairEra: 2,
			promPass: [2]time.Duration{2 * time.Second, 4 * time.Second}, promFault: [2]time.Duration{3 * time.Second, 5 * time.Second},
			releaseBound: 3 * time.Minute, timeout: 8 * time.Minute,
		}
	case "full":
		s = size{
			name: "full", lanes: allLanes(), releases: 140, perLane: 8,
			kills: 140, failovers: 12, stops: 4, apiServerRestarts: 3, defaultLeaseFailovers: 2,
			soloEra: 60 * time.Second, pairEra: 4,
			promPass: [2]time.Duration{4 * time.Second, 10 * time.Second}, promFault: [2]time.Duration{3 * time.Second, 8 * time.Second},
			releaseBound: 5 * time.Minute, timeout: 75 * time.Minute,
		}
	default:
		return s, fmt.Errorf("SLUICE_CHAOS=%q: want short or full", mode)
	}
	if names := os.Getenv("SLUICE_CHAOS_LANES"); names != "" {
		var lanes []laneSpec
		for _, name := range strings.Split(names, ",") {
			i := slices.IndexFunc(allLanes(), func(l laneSpec) bool { return l.name == strings.TrimSpace(name) })
			if i < 0 {
				return s, fmt.Errorf("SLUICE_CHAOS_LANES: no lane %q", name)
			}
			lanes = append(lanes, allLanes()[i])
		}
		s.lanes = lanes
	}
	for env, target := range map[string]*int{
		"SLUICE_CHAOS_RELEASES": &s.releases, "SLUICE_CHAOS_PER_LANE": &s.perLane,
		"SLUICE_CHAOS_KILLS": &s.kills, "SLUICE_CHAOS_FAILOVERS": &s.failovers, "SLUICE_CHAOS_STOPS": &s.stops,
		"SLUICE_CHAOS_APISERVER_RESTARTS": &s.apiServerRestarts, "SLUICE_CHAOS_DEFAULT_LEASE_FAILOVERS": &s.defaultLeaseFailovers,
	} {
		if v := os.Getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return s, fmt.Errorf("%s=%q: want a number", env, v)
			}
			*target = n
		}
	}
	return s, nil
}
