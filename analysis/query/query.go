// Package query renders the PromQL of analysis metrics, and the args in
// their conditions, from Go templates, and checks that the result parses.
//
// A query sees the template's args as {{ .args.NAME }} and the built-ins as
// {{ .namespace }}, {{ .rollout }}, {{ .workload }}, {{ .service }},
// {{ .ingress }}, {{ .stableRevision }}, {{ .canaryRevision }} and
// {{ .step }}. A value is written for the place it lands in (see Render),
// so that no value, whoever gives it, can end a label matcher or add to
// the query: it is only ever the string, number, duration or name the
// template put it in.
package query

import (
	"fmt"
	"sort"
	"strings"

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

// Render fills a PromQL query template. builtins holds the built-in values
// and args the user's; a reference to anything missing is an error. Each
// printed value is written for where it lands in the query:
//   - inside a "double" or 'single'-quoted string: escaped, so the string
//     holds exactly the value;
//   - inside a `raw string`: as it is; a value with a backtick is an error;
//   - in a # comment: as it is; a value with a line break is an error;
//   - anywhere else: as it is, if it is a number (0.5, 1e3, 0x1f, Inf), a
//     duration (5m, 1h30m) or a name (a metric, label or function name
//     that is no PromQL keyword); anything else is an error.
//
// A value that cannot stand where it lands is a *ValueError.
func Render(query string, builtins, args map[string]string) (string, error) {
	if strings.IndexByte(query, 0) >= 0 {
		return "", fmt.Errorf("the query contains a NUL character: write \\x00 inside a string")
	}
	var values []printed
	out, err := expand(query, builtins, args, func(p printed) (string, error) {
		values = append(values, p)
		return sentinel(len(values) - 1), nil
	})
	if err != nil {
		return "", err
	}
	return substitute(out, values)
}

// Parse checks that a rendered query is valid PromQL.
func Parse(promql string) error {
	_, err := parser.NewParser(parser.Options{}).ParseExpr(promql)
	return err
}

// placeholders stand in for user args unknown at admission. "1m" is a
// valid label value and a valid duration; "1" a valid number.
var placeholders = []string{"1m", "1"}

// builtinPlaceholders stand in for the built-ins at admission: values of
// the shape they have at run time (names with a dash, a hash that is no
// number), so that a query using one where only a number fits is
// rejected before any release, not at its first analysis.
var builtinPlaceholders = map[string]string{
	Namespace: "admission-check", Rollout: "admission-check", Workload: "admission-check",
	Service: "admission-check", Ingress: "admission-check",
	StableRevision: "5d8f9c7b6", CanaryRevision: "7c9d8b6f5", Step: "1",
}

// Check renders a query with placeholders for every arg in declared (and
// every built-in) and parses it. It is what admission runs: an undeclared
// arg or a query that cannot parse is reported before any release.
func Check(query string, declared map[string]string) error {
	var firstErr error
	for _, p := range placeholders {
		builtins, args := Placeholders(declared, p)
		rendered, err := Render(query, builtins, args)
		if err != nil {
			if _, isValue := err.(*ValueError); !isValue {
				return err // the template itself is wrong, whatever the values
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
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
		builtins[b] = builtinPlaceholders[b]
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
