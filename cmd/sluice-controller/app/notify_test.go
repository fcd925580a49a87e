package app

import (
	"strings"
	"testing"
)

// The --notifications-* flags are checked before anything starts.
func TestNotificationFlagsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" means valid
	}{
		{[]string{"--notifications"}, ""},
		{[]string{"--notifications", "--notifications-attempts=1", "--notifications-backoff=50ms", "--notifications-max-backoff=50ms"}, ""},
		{[]string{"--notifications-attempts=0"}, "--notifications-attempts"},
		{[]string{"--notifications-backoff=2m"}, "--notifications-backoff must be positive and at most --notifications-max-backoff"},
		{[]string{"--notifications-timeout=0s"}, "--notifications-timeout"},
	} {
		o, err := parse(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		err = o.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: unexpected error %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}
