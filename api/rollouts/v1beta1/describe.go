package v1beta1

import (
	"fmt"
	"strings"
)

// String says which requests m selects, e.g. "header User-Agent=Andriod
// and path /api"; "" when it selects by nothing.
func (m HttpRouteMatch) String() string {
	var conds []string
	for _, h := range m.Headers {
		conds = append(conds, fmt.Sprintf("header %s=%s", h.Name, h.Value))
	}
	for _, q := range m.QueryParams {
		conds = append(conds, fmt.Sprintf("query %s=%s", q.Name, q.Value))
	}
	if m.Path != nil && m.Path.Value != nil {
		conds = append(conds, "path "+*m.Path.Value)
	}
	return strings.Join(conds, " and ")
}
