package query

import (
	"strings"
	"testing"
)

func TestSelectors(t *testing.T) {
	cases := []struct {
		query string
		want  []string
	}{
		{`sum(rate(http_requests_total{namespace="demo",pod_template_hash="abc",code=~"5.."}[10s]))
		  / sum(rate(http_requests_total{namespace="demo",pod_template_hash="abc"}[10s]))`,
			[]string{`http_requests_total{code=~"5..",namespace="demo",pod_template_hash="abc"}`, `http_requests_total{namespace="demo",pod_template_hash="abc"}`}},
		// The same selector twice is asked once; offset and @ are not part of it.
		{`up{job="a"} - up{job="a"} offset 5m`, []string{`up{job="a"}`}},
		{`{__name__="up",job="a"}`, []string{`up{job="a"}`}},
		{`{__name__=~"http_.*",job="a"}`, []string{`{__name__=~"http_.*",job="a"}`}},
		{`vector(1) * 2`, nil},
		{`histogram_quantile(0.99, sum by (le) (rate(lat_bucket{namespace="x"}[1m])))`, []string{`lat_bucket{namespace="x"}`}},
	}
	for _, c := range cases {
		got, err := Selectors(c.query)
		if err != nil {
			t.Errorf("%s: %v", c.query, err)
			continue
		}
		var texts []string
		for _, s := range got {
			texts = append(texts, s.String())
		}
		if strings.Join(texts, " ; ") != strings.Join(c.want, " ; ") {
			t.Errorf("%s:\n got %q\nwant %q", c.query, texts, c.want)
		}
	}
	if _, err := Selectors(`sum(`); err == nil {
		t.Error("a query that does not parse gave no error")
	}
}

func TestSelectorWithOnly(t *testing.T) {
	s, err := Selectors(`http_requests_total{namespace="demo",pod_template_hash="abc"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := s[0].WithOnly().String(); got != "http_requests_total" {
		t.Errorf("the name alone: %s", got)
	}
	if got := s[0].WithOnly(s[0].Matchers[1]).String(); got != `http_requests_total{pod_template_hash="abc"}` {
		t.Errorf("one matcher: %s", got)
	}
}
