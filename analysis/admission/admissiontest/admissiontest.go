// Package admissiontest checks the responses of Sluice's webhooks in
// tests, fuzz targets above all: what any webhook may answer, whatever it
// was sent.
package admissiontest

import (
	"net/http"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// CheckResponse fails t unless resp is an allowance (with or without a
// patch), an error with a message (400 for what cannot be decoded, 500
// for what the webhook could not look up), or a denial (InvalidResponse)
// whose every cause names a field that its message shows.
func CheckResponse(t testing.TB, resp admission.Response) {
	t.Helper()
	if resp.Allowed {
		return
	}
	r := resp.Result
	switch {
	case r == nil:
		t.Fatalf("denied without a status: %+v", resp)
	case r.Code == http.StatusBadRequest || r.Code == http.StatusInternalServerError:
		if r.Message == "" {
			t.Fatalf("an error without a message: %+v", r)
		}
	case r.Details == nil || len(r.Details.Causes) == 0:
		t.Fatalf("denied without causes: %+v", r)
	default:
		for _, c := range r.Details.Causes {
			if c.Field == "" || !strings.Contains(r.Message, c.Field) {
				t.Fatalf("a cause without a field path (or not in the message %q): %+v", r.Message, c)
			}
		}
	}
}
