package controlplane

import (
	"strings"
	"testing"
)

func TestLinePrefixer(t *testing.T) {
	var b strings.Builder
	w := &linePrefixer{w: &b, prefix: "[x] "}
	for _, s := range []string{"a", "b\nc\n", "d\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.String(), "[x] ab\n[x] c\n[x] d\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
