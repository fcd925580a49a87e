package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// What fails before any cluster is contacted: usage errors exit 2 and
// say where the help is; a missing kubeconfig exits 1 and says what to set.
func TestRunExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		msg  []string
	}{
		{[]string{"--help"}, ExitOK, nil},
		{[]string{"bogus"}, ExitUsage, []string{`unknown command "bogus"`, "Run 'kubectl sluice --help' for usage."}},
		{[]string{"status"}, ExitUsage, []string{"status needs exactly one Rollout name, got 0 arguments", "Run 'kubectl sluice status --help'"}},
		{[]string{"approve", "a", "b"}, ExitUsage, []string{"exactly one Rollout name"}},
		{[]string{"get", "--bogus"}, ExitUsage, []string{"unknown flag: --bogus"}},
		{[]string{"get", "-o", "xml"}, ExitUsage, []string{`unknown output format "xml"`}},
		{[]string{"get", "x", "-A"}, ExitUsage, []string{"a rollout NAME and -A do not go together"}},
		{[]string{"promote", "x"}, ExitUsage, []string{"say so with --full", "kubectl sluice approve x"}},
		{[]string{"plan", "x", "--dry-run"}, ExitUsage, []string{"--dry-run needs -f FILE or --image"}},
		{[]string{"plan", "x", "-f", "a.yaml", "--image", "app=x:1"}, ExitUsage, []string{"give -f or --image, not both"}},
		{[]string{"plan", "x", "--image", "app="}, ExitUsage, []string{`--image "app=": want CONTAINER=IMAGE`}},
		{[]string{"get", "--kubeconfig", "/nonexistent/kubeconfig"}, ExitError, []string{"no usable kubeconfig", "set --kubeconfig or KUBECONFIG"}},
	} {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), c.args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, code, c.code, errOut.String())
		}
		for _, m := range c.msg {
			if !strings.Contains(errOut.String(), m) {
				t.Errorf("%v: stderr %q lacks %q", c.args, errOut.String(), m)
			}
		}
	}
}
