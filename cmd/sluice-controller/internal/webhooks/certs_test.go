package webhooks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"
)

var names = Names{DNS: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}}

func TestRenewCreatesAServableBundle(t *testing.T) {
	now := time.Now()
	b, changed, err := Renew(nil, names, now)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b.CABundle()) {
		t.Fatal("CA bundle does not parse")
	}
	pair, err := tls.X509KeyPair(b.ServeCert, b.ServeKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: now}); err != nil {
			t.Errorf("serving certificate not valid for %s: %v", host, err)
		}
	}
	if again, changed, _ := Renew(b, names, now.Add(time.Hour)); changed || string(again.ServeCert) != string(b.ServeCert) {
		t.Error("a valid bundle must be kept as is")
	}
}

func TestRenewRotatesBeforeExpiry(t *testing.T) {
	now := time.Now()
	b, _, _ := Renew(nil, names, now)

	// The serving certificate is renewed within 30 days of its end, by the same CA.
	later := now.Add(serveValidity - serveRenewBefore + time.Hour)
	r, changed, err := Renew(b, names, later)
	if err != nil || !changed || string(r.ServeCert) == string(b.ServeCert) || string(r.CACert) != string(b.CACert) {
		t.Fatalf("serving certificate not renewed by the same CA (changed=%v err=%v)", changed, err)
	}

	// New names need a new serving certificate.
	r, changed, _ = Renew(b, Names{DNS: []string{"sluice-webhook.sluice-system.svc"}}, now)
	if !changed || string(r.ServeCert) == string(b.ServeCert) {
		t.Fatal("a serving certificate for other names must be reissued")
	}

	// The CA is renewed within a year of its end; the old CA stays in the
	// bundle for one rotation so clients holding it keep working.
	late := now.Add(caValidity - caRenewBefore + time.Hour)
	r, changed, _ = Renew(b, names, late)
	if !changed || string(r.CACert) == string(b.CACert) || string(r.PreviousCACert) != string(b.CACert) {
		t.Fatal("CA not rotated with the previous one kept")
	}
	if n := countCerts(r.CABundle()); n != 2 {
		t.Fatalf("bundle holds %d certificates, want 2", n)
	}
}

func TestDirStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := DirStore{Dir: t.TempDir()}
	if b, err := s.Load(ctx); err != nil || b != nil {
		t.Fatalf("empty store: %v %v", b, err)
	}
	b, _, _ := Renew(nil, names, time.Now())
	if err := s.Save(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx)
	if err != nil || string(got.ServeKey) != string(b.ServeKey) || string(got.CACert) != string(b.CACert) {
		t.Fatalf("loaded %v, err %v", got, err)
	}
}

func countCerts(bundle []byte) int {
	n := 0
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return n
		}
		n++
	}
}
