package app

import (
	"errors"
	"strings"
	"testing"
)

// Lease timings that client-go would refuse are a usage error naming the
// flag, before anything connects to a cluster.
func TestLeaderElectionTimingsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" means valid
	}{
		{nil, ""},
		{[]string{"--leader-election-lease-duration=6s", "--leader-election-renew-deadline=4s", "--leader-election-retry-period=1s"}, ""},
		{[]string{"--leader-election-lease-duration=4s", "--leader-election-renew-deadline=4s"}, "--leader-election-lease-duration 4s must be longer than --leader-election-renew-deadline 4s"},
		{[]string{"--leader-election-renew-deadline=2s", "--leader-election-retry-period=2s"}, "--leader-election-renew-deadline 2s must be longer than 1.2 × --leader-election-retry-period (2s)"},
		{[]string{"--leader-election-retry-period=0s"}, "--leader-election-retry-period 0s must be positive"},
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

// The defaults are controller-runtime's.
func TestLeaderElectionDefaults(t *testing.T) {
	o, err := parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.leaseDuration.String() != "15s" || o.renewDeadline.String() != "10s" || o.retryPeriod.String() != "2s" {
		t.Errorf("defaults %s/%s/%s, want controller-runtime's 15s/10s/2s", o.leaseDuration, o.renewDeadline, o.retryPeriod)
	}
}

// Run turns an invalid combination into a UsageError.
func TestRunRejectsInvalidLeaseTimings(t *testing.T) {
	err := Run(t.Context(), []string{"--leader-election-lease-duration=1s"})
	var usage UsageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--leader-election-lease-duration") {
		t.Fatalf("error %v, want a UsageError about --leader-election-lease-duration", err)
	}
}
