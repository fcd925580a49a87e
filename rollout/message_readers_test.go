package rollout_test

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// The release's state is data (status.release, status.lastRelease, the
// conditions); the message (status.message, the MESSAGE column, and the
// canary or blue-green status' message) is its rendering for people. Code
// that decides anything from the text breaks when a message is reworded,
// so nothing but the code below reads it.

const module = "github.com/sluicehq/sluice"

// messageFields are the message fields, by the struct that declares them.
var messageFields = map[string]bool{
	module + "/api/rollouts/v1beta1.RolloutStatus.Message":  true,
	module + "/api/rollouts/v1beta1.CommonStatus.Message":   true, // canaryStatus, blueGreenStatus
	module + "/api/rollouts/v1alpha1.RolloutStatus.Message": true,
	module + "/api/rollouts/v1alpha1.CanaryStatus.Message":  true,
}

// readersAllowed are the functions that may read a message, and why.
// Each must still read one (a stale entry fails), so the list stays exact.
var readersAllowed = map[string]string{
	module + "/api/rollouts/v1alpha1.Rollout.ConvertTo":   "the conversion copies the field",
	module + "/api/rollouts/v1alpha1.Rollout.ConvertFrom": "the conversion copies the field",
	module + "/cmd/kubectl-sluice/cli.renderStatus":       "kubectl sluice status shows it (the Message line)",
	module + "/cmd/kubectl-sluice/cli.rowOf":              "kubectl sluice get -o wide shows it (the MESSAGE column)",
	module + "/cmd/kubectl-sluice/cli.progressLine":       "kubectl sluice status -w prints it in each line",
	module + "/cmd/sluice-playground.progressLine":        "the demo prints it under each line",
	module + "/e2e/framework.WaitRollout":                 "a wait that times out says the last status it saw",
}

// buildersAllowed are the files of the message builders, which may read
// what they build (they need not).
var buildersAllowed = []string{"rollout/messages.go", "rollout/decide_status.go"}

// read is a read of a message field.
type read struct {
	pos   token.Position
	field string
	// fn is the function it is in: "pkg.Func", "pkg.Type.Method", or
	// "pkg.<init>" outside any function.
	fn string
	// file is the path relative to the module's root.
	file string
}

func (r read) String() string {
	return fmt.Sprintf("%s:%d: %s reads %s", r.file, r.pos.Line, r.fn, r.field)
}

func TestNothingButTheBuildersAndTheDisplayReadsTheMessage(t *testing.T) {
	root := moduleRoot(t)
	reads := messageReads(t, load(t, root, nil, "./..."), root)
	used := map[string]bool{}
	for _, r := range reads {
		if _, ok := readersAllowed[r.fn]; ok {
			used[r.fn] = true
			continue
		}
		if builder(r.file) {
			continue
		}
		t.Errorf("%s: decide from the structured state (status.release, status.lastRelease, the conditions), not from the message", r)
	}
	for fn, why := range readersAllowed {
		if !used[fn] {
			t.Errorf("%s is allowed to read the message (%s) but reads none: take it off the list", fn, why)
		}
	}
	if len(reads) < len(readersAllowed) {
		t.Errorf("found %d reads in the module, fewer than the allowed readers: the search is broken", len(reads))
	}
}

// The check finds a read wherever it is: through an embedded struct, in a
// condition, in a closure, of either API version; and not a write.
func TestAPlantedReadIsFound(t *testing.T) {
	root := moduleRoot(t)
	planted := filepath.Join(root, "rollout", "metrics", "zz_planted.go")
	src := `package metrics

import (
	"strings"

	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func plantedPaused(r *v1beta1.Rollout) bool {
	return strings.Contains(r.Status.Message, "manually confirm")
}

func plantedCanary(r *v1beta1.Rollout) string {
	if cs := r.Status.CanaryStatus; cs != nil {
		return cs.Message
	}
	return ""
}

var plantedOld = func(r *v1alpha1.Rollout) bool { return r.Status.CanaryStatus.Message != "" }

func plantedWrite(r *v1beta1.Rollout) {
	r.Status.Message = "writes are fine"
	r.Status.CanaryStatus.Message = ""
}

func plantedAppend(r *v1beta1.Rollout) { r.Status.Message += "!" }
`
	pkgs := load(t, root, map[string][]byte{planted: []byte(src)}, "./rollout/metrics")
	var got []string
	for _, r := range messageReads(t, pkgs, root) {
		if r.file == "rollout/metrics/zz_planted.go" {
			got = append(got, fmt.Sprintf("%d %s %s", r.pos.Line, strings.TrimPrefix(r.fn, module+"/"), strings.TrimPrefix(r.field, module+"/api/rollouts/")))
		}
	}
	want := []string{
		"11 rollout/metrics.plantedPaused v1beta1.RolloutStatus.Message",
		"16 rollout/metrics.plantedCanary v1beta1.CommonStatus.Message",
		"21 rollout/metrics.<init> v1alpha1.CanaryStatus.Message",
		"28 rollout/metrics.plantedAppend v1beta1.RolloutStatus.Message",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("planted reads found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Dir(filepath.Dir(file))
}

// load type-checks the module's packages matching patterns, without their
// tests, with the e2e build tag (whose support packages are not tests).
func load(t *testing.T, root string, overlay map[string][]byte, patterns ...string) []*packages.Package {
	t.Helper()
	cfg := &packages.Config{
		Mode:       packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
		Dir:        root,
		BuildFlags: []string{"-tags=e2e"},
		Overlay:    overlay,
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range pkgs {
		for _, e := range p.Errors {
			// Packages with tests only (e2e suites) have nothing to check.
			if len(p.GoFiles) == 0 && strings.Contains(e.Msg, "no non-test Go files") {
				continue
			}
			t.Errorf("%s: %v", p.PkgPath, e)
		}
		if len(p.Syntax) > 0 {
			checked++
		}
	}
	if checked == 0 {
		t.Fatalf("no package of %v loaded", patterns)
	}
	return pkgs
}

// messageReads finds every read of a message field: a selector of one
// that is not the target of a plain assignment (x.Message = ...).
func messageReads(t *testing.T, pkgs []*packages.Package, root string) []read {
	t.Helper()
	var out []read
	for _, p := range pkgs {
		for _, f := range p.Syntax {
			written := map[*ast.SelectorExpr]bool{}
			ast.Inspect(f, func(n ast.Node) bool {
				if as, ok := n.(*ast.AssignStmt); ok && (as.Tok == token.ASSIGN || as.Tok == token.DEFINE) {
					for _, lhs := range as.Lhs {
						if se, ok := ast.Unparen(lhs).(*ast.SelectorExpr); ok {
							written[se] = true
						}
					}
				}
				return true
			})
			var fn []string // the enclosing function declarations, innermost last
			var visit func(n ast.Node) bool
			visit = func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.FuncDecl:
					fn = append(fn, funcName(p.PkgPath, n))
					if n.Body != nil {
						ast.Inspect(n.Body, visit)
					}
					fn = fn[:len(fn)-1]
					return false
				case *ast.SelectorExpr:
					if written[n] {
						return true
					}
					field := messageField(p.TypesInfo, n)
					if field == "" {
						return true
					}
					name := p.PkgPath + ".<init>"
					if len(fn) > 0 {
						name = fn[len(fn)-1]
					}
					pos := p.Fset.Position(n.Sel.Pos())
					rel, err := filepath.Rel(root, pos.Filename)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, read{pos: pos, field: field, fn: name, file: filepath.ToSlash(rel)})
				}
				return true
			}
			ast.Inspect(f, visit)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].file != out[j].file {
			return out[i].file < out[j].file
		}
		return out[i].pos.Offset < out[j].pos.Offset
	})
	return out
}

func funcName(pkg string, d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return pkg + "." + d.Name.Name
	}
	recv := d.Recv.List[0].Type
	for {
		switch r := recv.(type) {
		case *ast.StarExpr:
			recv = r.X
			continue
		case *ast.IndexExpr:
			recv = r.X
			continue
		case *ast.IndexListExpr:
			recv = r.X
			continue
		case *ast.Ident:
			return pkg + "." + r.Name + "." + d.Name.Name
		}
		return pkg + ".?." + d.Name.Name
	}
}

// messageField names the message field sel selects, through embedded
// structs ("pkg.CommonStatus.Message" for canaryStatus.Message), or "".
func messageField(info *types.Info, sel *ast.SelectorExpr) string {
	s, ok := info.Selections[sel]
	if !ok || s.Kind() != types.FieldVal || sel.Sel.Name != "Message" {
		return ""
	}
	// Walk the embedding path to the struct that declares the field.
	t := s.Recv()
	var owner *types.Named
	for _, i := range s.Index() {
		if p, ok := t.Underlying().(*types.Pointer); ok {
			t = p.Elem()
		}
		owner, _ = types.Unalias(t).(*types.Named)
		st, ok := t.Underlying().(*types.Struct)
		if !ok {
			return ""
		}
		t = st.Field(i).Type()
	}
	if owner == nil || owner.Obj().Pkg() == nil {
		return ""
	}
	name := owner.Obj().Pkg().Path() + "." + owner.Obj().Name() + ".Message"
	if !messageFields[name] {
		return ""
	}
	return name
}

// builder reports whether file is one of the message builders.
func builder(file string) bool {
	for _, b := range buildersAllowed {
		if file == b {
			return true
		}
	}
	return false
}
