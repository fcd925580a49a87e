//go:build e2e

package bench_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// appOf is the app (Rollout and Deployment name) an event is about: a
// ReplicaSet's is its Deployment's.
func appOf(o client.Object) string {
	if _, ok := o.(*appsv1.ReplicaSet); ok {
		if ref := metav1.GetControllerOf(o); ref != nil {
			return ref.Name
		}
		return ""
	}
	return o.GetName()
}

// transitions are the batch transitions of every release since from (the
// releases to img): for each app, the batch ready in its ReplicaSets'
// status to the controller's next write, as replay measures them for one
// release (transitions_test.go), on that app's events only.
func (f *fleet) transitions(from int, img string) (samples, error) {
	s, events, err := f.rec.replayFrom(from)
	if err != nil {
		return nil, err
	}
	byApp := map[string][]event{}
	for _, e := range events {
		if a := appOf(e.obj); strings.HasPrefix(a, "app-") {
			byApp[a] = append(byApp[a], e)
		}
	}
	states := map[string]state{}
	for k, o := range s {
		a := appOf(o)
		if states[a] == nil {
			states[a] = state{}
		}
		states[a][k] = o
	}
	var out samples
	var missing []string
	for a, evs := range byApp {
		st := states[a]
		if st == nil {
			st = state{}
		}
		p := plan{image: img, replicas: int32(f.cfg.replicas), targets: []int32{1, int32(f.cfg.replicas) / 2, int32(f.cfg.replicas)}}
		step := int32(1)
		var cond event
		haveCond := false
		for _, e := range evs {
			st.apply(e)
			if step > int32(len(p.targets)) {
				break
			}
			if !haveCond {
				if batchDone(st, p, p.targets[step-1]) {
					cond, haveCond = e, true
				}
				continue
			}
			if appBatchWrite(e, p, step, a) {
				out = append(out, e.at.Sub(cond.at))
				step++
				haveCond = false
			}
		}
		if step <= int32(len(p.targets)) {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return out, fmt.Errorf("%d releases without every transition seen (e.g. %s)", len(missing), missing[0])
	}
	return out, nil
}

// appBatchWrite is batchWrite for the app's Rollout and Deployment.
func appBatchWrite(e event, p plan, step int32, app string) bool {
	if r, ok := is[*v1beta1.Rollout](e, app); ok {
		st := r.Status
		return st.Phase != v1beta1.RolloutPhaseProgressing || st.CurrentStepIndex > step ||
			(st.CurrentStepIndex == step && st.CurrentStepState != v1beta1.CanaryStepStateUpgrade && st.CurrentStepState != v1beta1.CanaryStepStateInit)
	}
	if newReplicas(e, p) > p.targets[step-1] {
		return true
	}
	d, ok := is[*appsv1.Deployment](e, app)
	return ok && !d.Spec.Paused && imageOf(d.Spec.Template.Spec) == p.image
}

// total is every request, reads and writes.
func (r requests) total() float64 {
	n := 0.0
	for _, v := range r.byMethod {
		n += v
	}
	return n
}

// procStatusKiB reads a field of /proc/PID/status in kB (VmRSS, VmHWM).
func procStatusKiB(pid int, field string) (float64, error) {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// procPeakRSS is the process's peak resident memory in MiB (VmHWM).
func procPeakRSS(pid int) (float64, error) {
	k, err := procStatusKiB(pid, "VmHWM")
	return k / 1024, err
}

// procRSS is its resident memory now, in MiB.
func procRSS(pid int) (float64, error) {
	k, err := procStatusKiB(pid, "VmRSS")
	return k / 1024, err
}

// procCPU is the CPU time the process has used, user and system, in
// seconds (/proc/PID/stat utime and stime, in clock ticks of 1/100 s, the
// value of USER_HZ on Linux).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	// Fields 14 and 15 of stat; f[0] is field 3 (state).
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return (u + st) / 100, nil
}

// plotFleet draws, from every result in the JSON-lines file in, the
// manager's peak RSS and the transition p99 against the number of
// Rollouts, with the targets, into the PNG out.
func plotFleet(in, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var rs []fleetResult
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r fleetResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		rs = append(rs, r)
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Rollouts < rs[j].Rollouts })
	// A run stopped before its releases has an RSS but no transitions.
	var rss, p99 plotter.XYs
	maxX := 0.0
	for _, r := range rs {
		if r.PeakRSSMiB > 0 {
			rss = append(rss, plotter.XY{X: float64(r.Rollouts), Y: r.PeakRSSMiB})
		}
		if r.Transitions > 0 {
			p99 = append(p99, plotter.XY{X: float64(r.Rollouts), Y: r.TransitionP99})
		}
		maxX = max(maxX, float64(r.Rollouts))
	}
	left, err := fleetPlot("Manager peak RSS", "peak RSS (MiB)", rss, 300, "target at 1,000: < 300 MiB", maxX)
	if err != nil {
		return err
	}
	right, err := fleetPlot("Step transition p99", "p99 (s), log scale", p99, 1, "target at 100: < 1 s", maxX)
	if err != nil {
		return err
	}
	// The p99 spans two orders of magnitude from 100 to 1,000 Rollouts: on
	// a linear axis the points near the target would lie on the axis.
	right.Y.Scale, right.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	lowest := 1.0
	for _, pt := range p99 {
		lowest = min(lowest, pt.Y)
	}
	right.Y.Min = 0.99 * math.Pow(10, math.Floor(math.Log10(lowest))) // just below a labelled decade
	right.Y.Max *= 4                                                  // the legend's room, on a log axis
	img := vgimg.New(vg.Points(900), vg.Points(380))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(20), PadY: vg.Points(10), PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10), PadRight: vg.Points(10)}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	fh, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// fleetPlot is one panel: the measured line and the target, dashed.
func fleetPlot(title, ylabel string, pts plotter.XYs, target float64, targetLabel string, maxX float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "Rollouts (10-replica Deployments), all released at once"
	p.Y.Label.Text = ylabel
	p.X.Min, p.Y.Min = 0, 0
	p.X.Max = maxX * 1.05
	goal := plotter.NewFunction(func(float64) float64 { return target })
	goal.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(goal, plotter.NewGrid())
	if len(pts) > 0 {
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add("measured", line, points)
	}
	p.Legend.Add(targetLabel, goal)
	p.Legend.Top = true
	// Room above the highest point for the legend.
	p.Y.Max = max(p.Y.Max*1.25, target*1.25)
	return p, nil
}
