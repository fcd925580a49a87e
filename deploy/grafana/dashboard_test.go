// Package grafana_test checks deploy/grafana/sluice.json without Grafana:
// every query is PromQL once its variables are substituted, every
// variable it uses is defined, panels do not overlap. e2e/operability
// runs every query against a real Prometheus during real releases.
package grafana_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

// Grafana's own variables the queries may use.
var builtins = map[string]string{"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

var variable = regexp.MustCompile(`\$\{?(\w+)\}?`)

func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("sluice.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
	}
	for _, want := range []string{"datasource", "namespace", "rollout"} {
		if !defined[want] {
			t.Errorf("no variable %s", want)
		}
	}
	ids := map[int]string{}
	occupied := map[[2]int]string{} // cells of the 24-column grid
	overlaps := map[string]bool{}
	n := 0
	var exprs []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, ok := ids[p.ID]; ok || p.ID == 0 {
				t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, other)
			}
			ids[p.ID] = p.Title
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v", p.Title, g)
			}
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if other, ok := occupied[[2]int{x, y}]; ok && !overlaps[p.Title+"/"+other] {
						overlaps[p.Title+"/"+other] = true
						t.Errorf("panel %q overlaps %q at (%d,%d)", p.Title, other, x, y)
					}
					occupied[[2]int{x, y}] = p.Title
				}
			}
			if p.Type != "row" {
				if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: not on the ${datasource} variable", p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q: no query", p.Title)
				}
			}
			for _, tg := range p.Targets {
				n++
				exprs = append(exprs, tg.Expr)
				expr := variable.ReplaceAllStringFunc(tg.Expr, func(m string) string {
					name := variable.FindStringSubmatch(m)[1]
					if v, ok := builtins[name]; ok {
						return v
					}
					if !defined[name] {
						t.Errorf("panel %q: undefined variable %s", p.Title, m)
					}
					return "x"
				})
				if _, err := parser.NewParser(parser.Options{}).ParseExpr(expr); err != nil {
					t.Errorf("panel %q %s: %s: %v", p.Title, tg.RefID, tg.Expr, err)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if n < 20 {
		t.Errorf("%d queries", n)
	}
	// The release's state as the manager exports it from status.release
	// and status.lastRelease: what each release waits for (by reason), the
	// weight in force, and the releases by outcome.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`by \(namespace, rollout, reason\) \(sluice_rollout_waiting\b`),
		regexp.MustCompile(`sluice_rollout_waiting_since_seconds`),
		regexp.MustCompile(`sluice_rollout_canary_weight\{namespace="\$namespace",rollout="\$rollout"\}`),
		regexp.MustCompile(`sum by \(outcome\) \(sluice_release_duration_seconds_count\)`),
	} {
		if !slices.ContainsFunc(exprs, want.MatchString) {
			t.Errorf("no query matches %s", want)
		}
	}
}
