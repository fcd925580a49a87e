package query

import (
	"strings"
	"testing"
)

func TestRenderEscapesValues(t *testing.T) {
	got, err := Render(`rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}",code=~"{{ .args.codes }}"}[1m])`,
		map[string]string{Namespace: "shop", CanaryRevision: `7d"}or vector(1)#`},
		map[string]string{"codes": `5..`})
	if err != nil {
		t.Fatal(err)
	}
	want := `rate(http_requests_total{namespace="shop",pod_template_hash="7d\"}or vector(1)#",code=~"5.."}[1m])`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if err := Parse(got); err != nil {
		t.Fatalf("an injected quote must stay inside the string: %v", err)
	}
}

func TestRenderMissingArg(t *testing.T) {
	_, err := Render(`up{job="{{ .args.job }}"}`, nil, map[string]string{})
	if err == nil || !strings.Contains(err.Error(), `arg "job" is not declared`) {
		t.Fatalf("err = %v", err)
	}
	_, err = Render(`up{job="{{ .jobname }}"}`, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `"jobname" is not a built-in`) {
		t.Fatalf("err = %v", err)
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name     string
		query    string
		declared map[string]string
		wantErr  string
	}{
		{name: "label and duration args", query: `sum(rate(x{pod_template_hash="{{ .canaryRevision }}"}[{{ .args.window }}]))`, declared: map[string]string{"window": ""}},
		{name: "numeric arg", query: `x > {{ .args.limit }}`, declared: map[string]string{"limit": ""}},
		{name: "default value used", query: `x[{{ .args.window }}]`, declared: map[string]string{"window": "5m"}},
		{name: "undeclared arg", query: `x{a="{{ .args.nope }}"}`, wantErr: `arg "nope" is not declared`},
		{name: "bad PromQL", query: `sum(rate(x[1m])`, wantErr: "does not parse as PromQL"},
		{name: "bad template", query: `x{a="{{ .args.a "}`, wantErr: "unterminated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.query, tc.declared)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
