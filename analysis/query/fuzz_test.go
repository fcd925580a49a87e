package query

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/util/strutil"
)

// slot is a place in a query a value can be put, as the text before and
// after it. inString is what the string around the value must read when
// the slot is inside one ("" for a slot outside strings).
type slot struct {
	name, before, after string
	inString            func(v string) string
	// mayNotParse explains a value the place cannot take (an invalid
	// regular expression); nil means the query must parse whenever the
	// value was accepted inside a string.
	mayNotParse func(err error) bool
}

func itself(v string) string { return v }

var slots = []slot{
	{name: "double-quoted matcher", before: `sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="`, after: `"}[1m]))`, inString: itself},
	{name: "single-quoted matcher", before: `up{job='`, after: `'}`, inString: itself},
	{name: "raw matcher", before: "up{job=`", after: "`}", inString: itself},
	{name: "regex matcher", before: `up{code=~"`, after: `"}`, inString: itself,
		mayNotParse: func(err error) bool { return strings.Contains(err.Error(), "error parsing regexp") }},
	{name: "inside a longer string", before: `up{job="a-`, after: `-b"}`, inString: func(v string) string { return "a-" + v + "-b" }},
	{name: "string argument", before: `label_replace(up, "dst", "`, after: `", "src", "(.*)")`, inString: itself},
	{name: "quoted label name", before: `up{"`, after: `"="x"}`, inString: itself,
		mayNotParse: func(err error) bool { return strings.Contains(err.Error(), "label name") }},
	{name: "comment", before: `up # `, after: "\n> 1"},
	{name: "number", before: `up > `, after: ``},
	{name: "duration", before: `rate(up[`, after: `])`},
	{name: "grouping label", before: `sum by (`, after: `) (up)`},
	{name: "metric name", before: ``, after: `{job="x"}`},
}

// FuzzRender puts a fuzzed value (as a user arg, and as a built-in) in
// every kind of place a query template can put one, and checks that it
// never breaks out: either Render refuses it with a *ValueError, or, lexed
// with PromQL's own lexer, the value is inside exactly one token of the
// query: a string that reads exactly the value (and the query parses), a
// comment, or a single number, duration or name. The seeds are the
// values of the repository's queries and the classic break-outs.
func FuzzRender(f *testing.F) {
	for _, v := range []string{"shop", "5d8f9c7b6", "rollouts-demo-756ff5f57c", "1m", "10s", "5..", "0.05", "http_requests_total",
		`"}`, `7d"}or vector(1)#`, `'} or vector(1) or up{a='`, "x`} or vector(1)", "a\\", "\\\"", "a\nb", "1 or vector(1)", "or", "\x00", "\ufffd", "a\xff"} {
		f.Add(v, "default")
	}
	f.Fuzz(func(t *testing.T, value, builtin string) {
		for _, s := range slots {
			for _, action := range []string{"{{ .args.v }}", "{{ .canaryRevision }}"} {
				checkSlot(t, s, action, value, builtin)
			}
		}
	})
}

func checkSlot(t *testing.T, s slot, action, value, builtin string) {
	t.Helper()
	builtins := map[string]string{Namespace: builtin, CanaryRevision: value}
	args := map[string]string{"v": value}
	got, err := Render(s.before+action+s.after, builtins, args)
	if err != nil {
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Fatalf("%s: %v is not a *ValueError", s.name, err)
		}
		return
	}
	prefix, err := Render(s.before, builtins, args)
	if err != nil || !strings.HasPrefix(got, prefix) || !strings.HasSuffix(got, s.after) {
		t.Fatalf("%s: rendered %q does not start with %q (%v) and end with %q", s.name, got, prefix, err, s.after)
	}
	parseErr := Parse(got)
	if s.inString == nil && parseErr != nil && s.name != "comment" {
		return // outside quotes, a value the place cannot take: an error, not a break-out
	}
	start, end := len(prefix), len(got)-len(s.after)
	tok, ok := tokenAround(got, start, end)
	if !ok {
		t.Fatalf("%s: value %q is not inside one token of %q", s.name, value, got)
	}
	switch {
	case s.inString != nil:
		unquoted, err := strutil.Unquote(tok.Val)
		if start == end {
			unquoted, err = s.inString(""), nil
		}
		if tok.Typ != parser.STRING || err != nil || unquoted != s.inString(value) {
			t.Fatalf("%s: value %q landed in %v %q, reading %q (%v), want a string reading %q", s.name, value, tok.Typ, tok.Val, unquoted, err, s.inString(value))
		}
		if parseErr != nil && (s.mayNotParse == nil || !s.mayNotParse(parseErr)) {
			t.Fatalf("%s: %q does not parse: %v", s.name, got, parseErr)
		}
	case s.name == "comment":
		if start != end && tok.Typ != parser.COMMENT {
			t.Fatalf("%s: value %q landed in %v %q", s.name, value, tok.Typ, tok.Val)
		}
		if parseErr != nil {
			t.Fatalf("%s: %q does not parse: %v", s.name, got, parseErr)
		}
	default:
		if int(tok.Pos) != start || int(tok.Pos)+len(tok.Val) != end {
			t.Fatalf("%s: value %q is part of the token %v %q", s.name, value, tok.Typ, tok.Val)
		}
		switch tok.Typ {
		case parser.NUMBER, parser.DURATION, parser.IDENTIFIER, parser.METRIC_IDENTIFIER:
		default:
			t.Fatalf("%s: value %q is a %v, want a number, a duration or a name", s.name, value, tok.Typ)
		}
	}
}

// tokenAround lexes q and returns the one token that holds q[start:end];
// ok is false when the value overlaps no token, more than one, or one
// that does not hold all of it. An empty value is held by anything.
func tokenAround(q string, start, end int) (tok parser.Item, ok bool) {
	if start == end {
		return parser.Item{Typ: parser.STRING, Val: `""`}, true
	}
	l := parser.Lex(q)
	var it parser.Item
	found := 0
	for {
		l.NextItem(&it)
		if it.Typ == parser.EOF || it.Typ == parser.ERROR {
			break
		}
		from, to := int(it.Pos), int(it.Pos)+len(it.Val)
		if from < end && to > start {
			found++
			tok = it
			ok = from <= start && end <= to
		}
	}
	return tok, ok && found == 1
}
