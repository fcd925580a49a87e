package query

import "regexp"

// conditionValue is what a condition's template may print: a number
// (0.05, -1, 2e3) or true or false. Such a value is one literal wherever
// it lands in an expr-lang expression (in a string or a comment it is
// text), so no value can add an operator or a call to a condition.
var conditionValue = regexp.MustCompile(`^(-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|true|false)$`)

// RenderCondition fills a condition template ("result[0] < {{ .args.threshold }}")
// with the built-ins and args. A printed value that is not a number or
// true/false is a *ValueError.
func RenderCondition(cond string, builtins, args map[string]string) (string, error) {
	return expand(cond, builtins, args, func(p printed) (string, error) {
		if conditionValue.MatchString(p.value) {
			return p.value, nil
		}
		return "", p.errorf("is not a number: a condition's args are numbers (0.05, -1, 2e3) or true/false")
	})
}
