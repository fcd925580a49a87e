package route

import (
	"testing"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func TestFromStep(t *testing.T) {
	s := func(v string) *string { return &v }
	cases := []struct {
		name    string
		traffic *string
		want    int32 // CanaryWeight
		wantErr bool
	}{
		{name: "no traffic", want: -1},
		{name: "percent", traffic: s("50%"), want: 50},
		{name: "bare number", traffic: s("20"), want: 20},
		{name: "spaces", traffic: s(" 5% "), want: 5},
		{name: "zero", traffic: s("0%"), want: 0},
		{name: "all", traffic: s("100%"), want: 100},
		{name: "over 100", traffic: s("101%"), wantErr: true},
		{name: "negative", traffic: s("-1%"), wantErr: true},
		{name: "not a number", traffic: s("half"), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := FromStep(v1beta1.TrafficRoutingStrategy{Traffic: tc.traffic})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && r.CanaryWeight() != tc.want {
				t.Errorf("weight = %d, want %d", r.CanaryWeight(), tc.want)
			}
		})
	}
}
