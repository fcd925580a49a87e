// Package query renders the PromQL of analysis metrics from Go templates and
// checks that the result parses.
//
// A query sees the template's args as {{ .args.NAME }} and the built-ins as
// {{ .namespace }}, {{ .rollout }}, {{ .workload }}, {{ .service }},
// {{ .ingress }}, {{ .stableRevision }}, {{ .canaryRevision }} and
// {{ .step }}. Every value is escaped for a double-quoted PromQL string, so
// a value can never end a label matcher early.
package query

import (
	"fmt"
	"sort"
	"strings"
	"text/template"

	"github.com/prometheus/prometheus/promql/parser"
)

// The built-in args every query may use.
const (
	Namespace      = "namespace"
	Rollout        = "rollout"
	Workload       = "workload"
	Service        = "service"
	Ingress        = "ingress"
	StableRevision = "stableRevision"
	CanaryRevision = "canaryRevision"
	Step           = "step"
)

// Builtins lists the built-in arg names.
var Builtins = []string{Namespace, Rollout, Workload, Service, Ingress, StableRevision, CanaryRevision, Step}

// IsBuiltin reports whether name is a built-in arg.
func IsBuiltin(name string) bool {
	for _, b := range Builtins {
		if b == name {
			return true
		}
	}
	return false
}

// Render fills a query template. builtins holds the built-in values and
// args the user's; a reference to anything missing is an error.
func Render(query string, builtins, args map[string]string) (string, error) {
	tmpl, err := template.New("query").Option("missingkey=error").Parse(query)
	if err != nil {
		return "", err
	}
	data := map[string]any{}
	for k, v := range builtins {
		data[k] = escape(v)
	}
	escaped := make(map[string]string, len(args))
	for k, v := range args {
		escaped[k] = escape(v)
	}
	data["args"] = escaped
	var out strings.Builder
	if err := tmpl.Execute(&out, data); err != nil {
		return "", explain(err)
	}
	return out.String(), nil
}

// Parse checks that a rendered query is valid PromQL.
func Parse(promql string) error {
	_, err := parser.NewParser(parser.Options{}).ParseExpr(promql)
	return err
}

// placeholders stand in for values unknown at admission. "1m" is a valid
// label value and a valid duration; "1" a valid number.
var placeholders = []string{"1m", "1"}

// Check renders a query with placeholders for every arg in declared (and
// every built-in) and parses it. It is what admission runs: an undeclared
// arg or a query that cannot parse is reported before any release.
func Check(query string, declared map[string]string) error {
	var firstErr error
	for _, p := range placeholders {
		builtins, args := Placeholders(declared, p)
		rendered, err := Render(query, builtins, args)
		if err != nil {
			return err // the template itself is wrong, whatever the values
		}
		if err := Parse(rendered); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("does not parse as PromQL: %w (rendered: %s)", err, rendered)
			}
			continue
		}
		return nil
	}
	return firstErr
}

// Placeholders returns built-in and arg values for rendering at admission:
// an arg's default when it has one, p otherwise.
func Placeholders(declared map[string]string, p string) (builtins, args map[string]string) {
	builtins = map[string]string{}
	for _, b := range Builtins {
		builtins[b] = p
	}
	args = map[string]string{}
	for name, value := range declared {
		if value == "" {
			value = p
		}
		args[name] = value
	}
	return builtins, args
}

// escape makes v safe inside a double-quoted PromQL string.
func escape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// explain rewrites text/template's missing-key error into one that names
// the arg and the ways to provide it.
func explain(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, `map has no entry for key "`); i >= 0 {
		key := strings.TrimSuffix(msg[i+len(`map has no entry for key "`):], `"`)
		if strings.Contains(msg, ".args.") {
			return fmt.Errorf("arg %q is not declared: add it to spec.args (with a default value, or pass it from the Rollout)", key)
		}
		return fmt.Errorf("%q is not a built-in (built-ins: %s); user args are written {{ .args.%s }}", key, strings.Join(sortedBuiltins(), ", "), key)
	}
	return err
}

func sortedBuiltins() []string {
	s := append([]string(nil), Builtins...)
	sort.Strings(s)
	return s
}
