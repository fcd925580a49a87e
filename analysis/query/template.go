package query

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// ValueError is a value that cannot stand where a template prints it.
type ValueError struct {
	// Action is the template action that printed the value, as written
	// ("{{.args.threshold}}").
	Action string
	// Arg is the user arg the action prints when it is {{ .args.NAME }},
	// and Builtin the built-in when it is {{ .NAME }}; both are empty for
	// any other action (a pipeline, a variable).
	Arg, Builtin string
	Value        string
	Reason       string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%s is %q: %s", e.Action, e.Value, e.Reason)
}

// markFunc is the function every printing action's pipeline ends in.
// Templates are parsed before it is added, so a template cannot call it.
const markFunc = "sluiceValue"

// printed is one value a template printed, and the action that printed it.
type printed struct {
	action, arg, builtin string
	value                string
}

func (p printed) errorf(format string, args ...any) *ValueError {
	return &ValueError{Action: p.action, Arg: p.arg, Builtin: p.builtin, Value: p.value, Reason: fmt.Sprintf(format, args...)}
}

// expand executes a template on the built-ins and args. Every value an
// action prints goes through put, whose result is written in its place:
// html/template's trick, applied to the parse tree, so that what a value
// is (a number, the text inside a string) is decided by where it ends up,
// never by the value itself. A put error is returned as it is.
func expand(src string, builtins, args map[string]string, put func(printed) (string, error)) (string, error) {
	tmpl, err := template.New("query").Option("missingkey=error").Parse(src)
	if err != nil {
		return "", err
	}
	var actions []printed
	for _, t := range tmpl.Templates() {
		if t.Tree != nil {
			markActions(t.Tree.Root, &actions)
		}
	}
	var putErr error
	tmpl.Funcs(template.FuncMap{markFunc: func(i int, v any) (string, error) {
		p := actions[i]
		p.value = printable(v)
		s, err := put(p)
		if err != nil && putErr == nil {
			putErr = err
		}
		return s, err
	}})

	data := map[string]any{}
	for k, v := range builtins {
		data[k] = v
	}
	a := make(map[string]string, len(args))
	for k, v := range args {
		a[k] = v
	}
	data["args"] = a
	var out strings.Builder
	if err := tmpl.Execute(&out, data); err != nil {
		if putErr != nil {
			return "", putErr
		}
		return "", explain(err)
	}
	return out.String(), nil
}

// markActions appends `| sluiceValue N` to the pipeline of every action
// that prints (one that declares or assigns a variable prints nothing),
// recording each in actions at its N.
func markActions(n parse.Node, actions *[]printed) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			markActions(c, actions)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return
		}
		p := printed{action: n.String()}
		p.arg, p.builtin = names(n.Pipe)
		index := &parse.NumberNode{NodeType: parse.NodeNumber, Pos: n.Pos, IsInt: true, Int64: int64(len(*actions)), Text: strconv.Itoa(len(*actions))}
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos,
			Args: []parse.Node{parse.NewIdentifier(markFunc).SetPos(n.Pos), index}})
		*actions = append(*actions, p)
	case *parse.IfNode:
		markActions(n.List, actions)
		markActions(n.ElseList, actions)
	case *parse.RangeNode:
		markActions(n.List, actions)
		markActions(n.ElseList, actions)
	case *parse.WithNode:
		markActions(n.List, actions)
		markActions(n.ElseList, actions)
	}
}

// names tells which arg or built-in a pipeline prints, when it is just
// {{ .args.NAME }} or {{ .NAME }}.
func names(pipe *parse.PipeNode) (arg, builtin string) {
	if len(pipe.Cmds) != 1 || len(pipe.Cmds[0].Args) != 1 {
		return "", ""
	}
	f, ok := pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok {
		return "", ""
	}
	switch {
	case len(f.Ident) == 2 && f.Ident[0] == "args":
		return f.Ident[1], ""
	case len(f.Ident) == 1 && IsBuiltin(f.Ident[0]):
		return "", f.Ident[0]
	}
	return "", ""
}

// printable is v as text/template prints it.
func printable(v any) string {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		v = rv.Elem().Interface()
	}
	return fmt.Sprint(v)
}
