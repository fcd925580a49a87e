package query

import (
	"errors"
	"strings"
	"testing"
)

// Values that used to end the string they were put in, or to add to the
// query where they stood outside quotes: each is now written for where it
// lands, or refused with an error that names the action and the value.
func TestRenderWritesValuesForWhereTheyLand(t *testing.T) {
	cases := []struct {
		name, query, value string
		want               string // the rendered query, when it renders
		wantErr            string
	}{
		{name: "double quotes: a quote and a brace", query: `up{job="{{ .args.v }}"}`, value: `x"} or vector(1) #`,
			want: `up{job="x\"} or vector(1) #"}`},
		{name: "single quotes: a single quote (was written as is, ending the string)", query: `up{job='{{ .args.v }}'}`, value: `x'} or vector(1) or up{job='`,
			want: `up{job='x\'} or vector(1) or up{job=\''}`},
		{name: "double quotes: backslashes and a line break", query: `up{job="{{ .args.v }}"}`, value: "a\\\"\nb",
			want: `up{job="a\\\"\nb"}`},
		{name: "control characters and U+FFFD become escapes", query: `up{job="{{ .args.v }}"}`, value: "a\rb\x00c\ufffd",
			want: `up{job="a\u000db\u0000c\ufffd"}`},
		{name: "invalid UTF-8", query: `up{job="{{ .args.v }}"}`, value: "a\xffb", wantErr: "not valid UTF-8"},
		{name: "raw string: a backtick would end it", query: "up{job=`{{ .args.v }}`}", value: "x`} or vector(1) #", wantErr: "contains a backtick"},
		{name: "raw string: backslashes stay as they are", query: "up{code=~`{{ .args.v }}`}", value: `5\d\d`, want: "up{code=~`5\\d\\d`}"},
		{name: "outside quotes: an expression (was written as is)", query: `up > {{ .args.v }}`, value: `1 or vector(1)`, wantErr: "stands outside quotes"},
		{name: "outside quotes: a keyword", query: `up > 1 {{ .args.v }} vector(1)`, value: `or`, wantErr: "stands outside quotes"},
		{name: "outside quotes: a number", query: `up > {{ .args.v }}`, value: `0.05`, want: `up > 0.05`},
		{name: "outside quotes: a duration", query: `rate(up[{{ .args.v }}])`, value: `1h30m`, want: `rate(up[1h30m])`},
		{name: "outside quotes: a metric name", query: `{{ .args.v }}{job="x"}`, value: `http_requests_total`, want: `http_requests_total{job="x"}`},
		{name: "a comment: a line break would end it", query: "up # {{ .args.v }}\n> 1", value: "x\nor vector(1)", wantErr: "contains a line break"},
		{name: "after a backslash of the query", query: `up{job="\{{ .args.v }}"}`, value: `"} or vector(1) #`, wantErr: "inside an escape sequence"},
		{name: "inside a \\u escape of the query", query: `up{job="\u00{{ .args.v }}"}`, value: `e9`, wantErr: "inside an escape sequence"},
		{name: "after a finished escape", query: `up{job="\u00e9{{ .args.v }}"}`, value: `"`, want: `up{job="\u00e9\""}`},
		{name: "printed by a pipeline", query: `up{job="{{ printf "%s-x" .args.v }}"}`, value: `a"b`, want: `up{job="a\"b-x"}`},
		{name: "a built-in is escaped too", query: `up{pod_template_hash="{{ .canaryRevision }}"} > {{ .args.v }}`, value: "1", want: `up{pod_template_hash="7d\"}"} > 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.query, map[string]string{CanaryRevision: `7d"}`}, map[string]string{"v": tc.value})
			if tc.wantErr != "" {
				var ve *ValueError
				if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want a *ValueError containing %q (rendered %q)", err, tc.wantErr, got)
				}
				if ve.Value != tc.value || ve.Action == "" {
					t.Errorf("error names %q = %q, want the action and value %q", ve.Action, ve.Value, tc.value)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if err := Parse(got); err != nil {
				t.Fatalf("does not parse: %v", err)
			}
		})
	}
}

func TestValueErrorNamesTheArg(t *testing.T) {
	_, err := Render(`up > {{ .args.limit }} and up{ns="{{ .namespace }}"}`, map[string]string{Namespace: "shop"}, map[string]string{"limit": "1)"})
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Arg != "limit" || ve.Builtin != "" || ve.Action != "{{.args.limit}}" {
		t.Fatalf("err = %#v", err)
	}
	_, err = Render(`up > {{ .step }}`, map[string]string{Step: "x y"}, nil)
	if !errors.As(err, &ve) || ve.Builtin != Step || ve.Arg != "" {
		t.Fatalf("err = %#v", err)
	}
	_, err = Render(`up > {{ .args.limit | printf "%s" }}`, nil, map[string]string{"limit": "x y"})
	if !errors.As(err, &ve) || ve.Arg != "" || ve.Action != `{{.args.limit | printf "%s"}}` {
		t.Fatalf("err = %#v", err)
	}
}

func TestTemplatesCannotCallTheMarker(t *testing.T) {
	if _, err := Render(`up{a="{{ sluiceValue 0 "x" }}"}`, nil, nil); err == nil || !strings.Contains(err.Error(), "not defined") {
		t.Fatalf("err = %v", err)
	}
}

func TestRenderConditionTakesNumbersOnly(t *testing.T) {
	for value, ok := range map[string]bool{
		"0.05": true, "-1": true, "2e3": true, ".5": true, "true": true, "1e-3": true,
		"1 || true": false, "result": false, "0.05) || (true": false, "": false, `"x"`: false, "1; true": false,
	} {
		got, err := RenderCondition(`result[0] < {{ .args.threshold }}`, nil, map[string]string{"threshold": value})
		if ok && (err != nil || got != "result[0] < "+value) {
			t.Errorf("%q: %q, %v", value, got, err)
		}
		var ve *ValueError
		if !ok && (!errors.As(err, &ve) || ve.Arg != "threshold" || !strings.Contains(err.Error(), "is not a number")) {
			t.Errorf("%q: err = %v, want a *ValueError", value, err)
		}
	}
}
