package app

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

// --watch-label-selector takes Flux's forms; a selector that cannot parse,
// or selects everything, is a usage error naming the flag.
func TestWatchLabelSelector(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		want    string // the canonical selector, "" for none
		wantErr string
	}{
		{"", "", ""},
		{"sharding.fluxcd.io/key=shard1", "sharding.fluxcd.io/key=shard1", ""},
		{"!sharding.fluxcd.io/key", "!sharding.fluxcd.io/key", ""},
		{"sharding.fluxcd.io/key in (a,b)", "sharding.fluxcd.io/key in (a,b)", ""},
		{"sharding.fluxcd.io/key==", "", ""}, // an empty value is a valid one
		{"a b", "", "--watch-label-selector \"a b\""},
		{"=x", "", "--watch-label-selector \"=x\""},
	} {
		o, err := parse([]string{"--watch-label-selector=" + tc.arg})
		if err != nil {
			t.Fatal(err)
		}
		err = o.validate()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.arg, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.arg, err)
			continue
		}
		sel, _ := o.shardSelector()
		if tc.arg == "" {
			if sel != nil {
				t.Errorf("no flag gave selector %v", sel)
			}
			continue
		}
		if tc.want != "" && sel.String() != tc.want {
			t.Errorf("%q: selector %q, want %q", tc.arg, sel, tc.want)
		}
	}
}

// The shard selects by the Rollout's labels: the default shard takes what
// no named shard does.
func TestShardSelectorsAreDisjoint(t *testing.T) {
	def, _ := labels.Parse("!" + ShardKeyLabel)
	one, _ := labels.Parse(ShardKeyLabel + "=shard1")
	for _, set := range []labels.Set{{}, {ShardKeyLabel: "shard1"}, {ShardKeyLabel: "shard2"}, {"app": "web"}} {
		if def.Matches(set) && one.Matches(set) {
			t.Errorf("%v is in two shards", set)
		}
	}
	if !def.Matches(labels.Set{"app": "web"}) || !one.Matches(labels.Set{ShardKeyLabel: "shard1"}) {
		t.Error("a Rollout fell out of its shard")
	}
}

// Each shard elects its own leader: a Lease per selector, stable, and the
// unsharded manager keeps the Lease it always had (and its RBAC).
func TestLeaseNamePerShard(t *testing.T) {
	name := func(args ...string) string {
		o, err := parse(args)
		if err != nil {
			t.Fatal(err)
		}
		return o.leaseName()
	}
	if got := name(); got != "sluice-controller.sluice.dev" {
		t.Errorf("unsharded lease %q", got)
	}
	a := name("--watch-label-selector=sharding.fluxcd.io/key=shard1")
	b := name("--watch-label-selector=sharding.fluxcd.io/key=shard2")
	d := name("--watch-label-selector=!sharding.fluxcd.io/key")
	if a == b || a == d || b == d || a == defaultLeaseName {
		t.Errorf("leases not distinct: %q %q %q", a, b, d)
	}
	if again := name("--watch-label-selector=sharding.fluxcd.io/key=shard1"); again != a {
		t.Errorf("lease of the same shard changed: %q then %q", a, again)
	}
	if !strings.HasPrefix(a, "sluice-controller-") || !strings.HasSuffix(a, ".sluice.dev") {
		t.Errorf("lease %q", a)
	}
	if got := name("--watch-label-selector=sharding.fluxcd.io/key=shard1", "--leader-election-id=mine"); got != "mine" {
		t.Errorf("--leader-election-id ignored: %q", got)
	}
}
