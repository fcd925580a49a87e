package prometheus

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicehq/sluice/analysis/measure"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

func TestConvert(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   model.Value
		want string
		kind measure.Kind
	}{
		{"scalar", &model.Scalar{Value: 0.5}, "0.5", measure.Scalar},
		{"vector", model.Vector{{Value: 1}, {Value: 2}}, "[1,2]", measure.Vector},
		{"empty vector", model.Vector{}, "[]", measure.Vector},
		{"matrix", model.Matrix{{Values: []model.SamplePair{{Value: 1}, {Value: 2}}}, {Values: []model.SamplePair{{Value: 3}}}}, "[1,2,3]", measure.Matrix},
		{"nil", nil, "[]", measure.Vector},
	} {
		got, err := convert(tc.in)
		if err != nil || got.String() != tc.want || got.Kind != tc.kind {
			t.Errorf("%s: got %v %v %v", tc.name, got, got.Kind, err)
		}
	}
	if _, err := convert(&model.String{Value: "x"}); err == nil || !strings.Contains(err.Error(), "returned a string") {
		t.Errorf("string: %v", err)
	}
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestUnreachable(t *testing.T) {
	addr := closedPort(t)
	p := &Provider{DefaultAddress: addr}
	_, err := p.Query(t.Context(), Request{Provider: &v1alpha1.PrometheusProvider{}, Query: "up", Time: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "Prometheus at "+addr+" could not be reached: ") {
		t.Fatalf("got %v", err)
	}
}

func TestAddressErrors(t *testing.T) {
	p := &Provider{}
	_, err := p.Query(t.Context(), Request{Provider: &v1alpha1.PrometheusProvider{}, Query: "up"})
	if err == nil || !strings.Contains(err.Error(), "--prometheus-address") {
		t.Errorf("no address: %v", err)
	}
	_, err = p.Query(t.Context(), Request{Provider: &v1alpha1.PrometheusProvider{Address: "prometheus:9090"}, Query: "up"})
	if err == nil || !strings.Contains(err.Error(), "is not an http:// or https:// URL") {
		t.Errorf("bad address: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	// A listener that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	addr := "http://" + l.Addr().String()
	p := &Provider{}
	_, err = p.Query(t.Context(), Request{Provider: &v1alpha1.PrometheusProvider{Address: addr, Timeout: &metav1.Duration{Duration: 200 * time.Millisecond}}, Query: "up"})
	if err == nil || !strings.Contains(err.Error(), "Prometheus at "+addr+" did not answer within 200ms") {
		t.Errorf("got %v", err)
	}
}

// TestCredentials checks what reaches the server: headers, bearer token
// and basic auth from the Secret. The server only records requests.
func TestCredentials(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"scalar","result":[0,"1"]}}`))
	}))
	defer srv.Close()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "prom"},
		Data: map[string][]byte{"token": []byte("s3cret\n"), "user": []byte("u"), "pass": []byte("p")}}
	p := &Provider{DefaultAddress: srv.URL, Secrets: fake.NewClientBuilder().WithObjects(secret).Build()}
	query := func(spec v1alpha1.PrometheusProvider) error {
		_, err := p.Query(t.Context(), Request{Namespace: "ns", Provider: &spec, Query: "1"})
		return err
	}

	if err := query(v1alpha1.PrometheusProvider{Headers: []v1alpha1.Header{{Key: "X-Scope-OrgID", Value: "team-a"}},
		Authentication: &v1alpha1.PrometheusAuthentication{SecretName: "prom", BearerTokenKey: "token"}}); err != nil {
		t.Fatal(err)
	}
	if got.Get("X-Scope-Orgid") != "team-a" || got.Get("Authorization") != "Bearer s3cret" {
		t.Errorf("headers %v", got)
	}
	if err := query(v1alpha1.PrometheusProvider{Authentication: &v1alpha1.PrometheusAuthentication{SecretName: "prom", UsernameKey: "user", PasswordKey: "pass"}}); err != nil {
		t.Fatal(err)
	}
	if got.Get("Authorization") != "Basic dTpw" {
		t.Errorf("basic auth %q", got.Get("Authorization"))
	}
	for _, tc := range []struct {
		spec v1alpha1.PrometheusProvider
		want string
	}{
		{v1alpha1.PrometheusProvider{Authentication: &v1alpha1.PrometheusAuthentication{SecretName: "nope", BearerTokenKey: "token"}}, "reading credentials from Secret ns/nope"},
		{v1alpha1.PrometheusProvider{Authentication: &v1alpha1.PrometheusAuthentication{SecretName: "prom", BearerTokenKey: "tok"}}, `Secret ns/prom has no key tok`},
		{v1alpha1.PrometheusProvider{Authentication: &v1alpha1.PrometheusAuthentication{SecretName: "prom", CAKey: "user"}}, "no PEM certificate"},
		{v1alpha1.PrometheusProvider{Headers: []v1alpha1.Header{{Key: "authorization", Value: "x"}}}, "use authentication"},
	} {
		if err := query(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Prometheus at "+srv.URL) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

// TestDefaultAuthentication checks that the manager's own credentials go
// to its default Prometheus only: with metrics that name no address and
// no authentication, read from the manager's namespace; never to an
// address a template names, and never instead of a template's own.
func TestDefaultAuthentication(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"scalar","result":[0,"1"]}}`))
	}))
	defer srv.Close()
	secrets := fake.NewClientBuilder().WithObjects(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "sluice-system", Name: "prom"}, Data: map[string][]byte{"token": []byte("manager")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "prom"}, Data: map[string][]byte{"token": []byte("team")}},
	).Build()
	p := &Provider{DefaultAddress: srv.URL, Secrets: secrets, DefaultAuthNamespace: "sluice-system",
		DefaultAuthentication: &v1alpha1.PrometheusAuthentication{SecretName: "prom", BearerTokenKey: "token"}}
	own := &v1alpha1.PrometheusAuthentication{SecretName: "prom", BearerTokenKey: "token"}
	for _, spec := range []v1alpha1.PrometheusProvider{
		{},                    // the default Prometheus: the manager's credentials
		{Authentication: own}, // the template's own credentials win
		{Address: srv.URL},    // a named address gets no credentials of the manager's
		{Address: srv.URL, Authentication: own},
	} {
		if _, err := p.Query(t.Context(), Request{Namespace: "team", Provider: &spec, Query: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"Bearer manager", "Bearer team", "", "Bearer team"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Authorization headers %q, want %q", got, want)
	}
}

// An answer Prometheus gave that cannot be used (a matrix for an instant
// query) is an error, and what Prometheus warned of with it is kept.
func TestUnusableAnswerKeepsWarnings(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","warnings":["results truncated"],"data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}`))
	}))
	defer srv.Close()
	p := &Provider{DefaultAddress: srv.URL}
	v, err := p.Query(t.Context(), Request{Namespace: "ns", Provider: &v1alpha1.PrometheusProvider{}, Query: "up[1m]"})
	if err == nil || !strings.Contains(err.Error(), "range vector (matrix)") {
		t.Fatalf("error %v, want the matrix refused", err)
	}
	if len(v.Warnings) != 1 || v.Warnings[0] != "results truncated" {
		t.Errorf("warnings %q, want Prometheus' kept", v.Warnings)
	}
}
