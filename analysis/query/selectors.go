package query

import (
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Selector is one series selector of a query, e.g.
// http_requests_total{namespace="demo",code=~"5.."}: what it reads from
// Prometheus before any function or operator. A query whose selector
// selects no series gives no data, whatever its condition says.
type Selector struct {
	// Metric is the metric name, "" when the selector names none.
	Metric string
	// Matchers are the label matchers but the name's.
	Matchers []*labels.Matcher
}

// String is the selector as PromQL, without range, offset or @.
func (s Selector) String() string {
	return s.Metric + matchersText(s.Matchers)
}

// WithOnly is the selector with the metric name and only the matchers
// kept, e.g. to ask which matcher selects nothing.
func (s Selector) WithOnly(keep ...*labels.Matcher) Selector {
	return Selector{Metric: s.Metric, Matchers: keep}
}

func matchersText(ms []*labels.Matcher) string {
	if len(ms) == 0 {
		return ""
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Selectors returns the distinct series selectors of a rendered query, in
// the order they first appear.
func Selectors(promql string) ([]Selector, error) {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(promql)
	if err != nil {
		return nil, err
	}
	var out []Selector
	seen := map[string]bool{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := Selector{Metric: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if s.Metric == "" && m.Type == labels.MatchEqual {
					s.Metric = m.Value
					continue
				}
				if m.Type == labels.MatchEqual && m.Value == s.Metric {
					continue
				}
			}
			s.Matchers = append(s.Matchers, m)
		}
		sort.SliceStable(s.Matchers, func(i, j int) bool { return s.Matchers[i].Name < s.Matchers[j].Name })
		if k := s.String(); !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
		return nil
	})
	return out, nil
}
