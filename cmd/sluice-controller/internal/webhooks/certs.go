// Package webhooks runs the manager's side of its admission and conversion
// webhooks: a CA and serving certificate it creates and rotates itself, and
// the webhook configurations and CRD conversion it registers with that CA.
package webhooks

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Bundle is a CA and the serving certificate it signed, PEM encoded.
type Bundle struct {
	CACert, CAKey       []byte
	ServeCert, ServeKey []byte
	// PreviousCACert is kept in the caBundle for one rotation so that
	// clients holding the old bundle keep trusting the server.
	PreviousCACert []byte
}

// Validity of what Bundle holds, and how early each is renewed.
const (
	caValidity       = 10 * 365 * 24 * time.Hour
	caRenewBefore    = 365 * 24 * time.Hour
	serveValidity    = 365 * 24 * time.Hour
	serveRenewBefore = 30 * 24 * time.Hour
)

// Names are the identities the serving certificate is valid for.
type Names struct {
	DNS []string
	IPs []net.IP
}

// CABundle is what clients (the kube-apiserver) trust.
func (b *Bundle) CABundle() []byte {
	return append(append([]byte{}, b.CACert...), b.PreviousCACert...)
}

// Renew returns a bundle that is valid at now for names, reusing what is
// still good in b (b may be nil). changed is false when b was returned as is.
func Renew(b *Bundle, names Names, now time.Time) (out *Bundle, changed bool, err error) {
	out = &Bundle{}
	if b != nil {
		*out = *b
	}
	ca, caKey, caErr := parsePair(out.CACert, out.CAKey)
	if caErr != nil || now.Add(caRenewBefore).After(ca.NotAfter) {
		if caErr == nil {
			out.PreviousCACert = out.CACert
		}
		if out.CACert, out.CAKey, err = newCA(now); err != nil {
			return nil, false, err
		}
		if ca, caKey, err = parsePair(out.CACert, out.CAKey); err != nil {
			return nil, false, err
		}
		out.ServeCert = nil // signed by the old CA
		changed = true
	}
	if !serveCertValid(out.ServeCert, out.ServeKey, ca, names, now) {
		if out.ServeCert, out.ServeKey, err = newServingCert(ca, caKey, names, now); err != nil {
			return nil, false, err
		}
		changed = true
	}
	return out, changed, nil
}

func newCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "sluice-webhook-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return encode(der, key)
}

func newServingCert(ca *x509.Certificate, caKey *ecdsa.PrivateKey, names Names, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	cn := "sluice-webhook"
	if len(names.DNS) > 0 {
		cn = names.DNS[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names.DNS,
		IPAddresses:  names.IPs,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serveValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	return encode(der, key)
}

// serveCertValid reports whether the serving certificate is signed by ca,
// covers names and is not due for renewal.
func serveCertValid(certPEM, keyPEM []byte, ca *x509.Certificate, names Names, now time.Time) bool {
	cert, _, err := parsePair(certPEM, keyPEM)
	if err != nil || now.Add(serveRenewBefore).After(cert.NotAfter) || cert.CheckSignatureFrom(ca) != nil {
		return false
	}
	for _, d := range names.DNS {
		if cert.VerifyHostname(d) != nil {
			return false
		}
	}
	for _, ip := range names.IPs {
		if cert.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	return true
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("missing certificate or key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func encode(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return n
}

// WriteServingFiles writes tls.crt and tls.key where controller-runtime's
// webhook server reads (and re-reads on change) them. Unchanged files are
// not rewritten.
func WriteServingFiles(dir string, b *Bundle) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"tls.crt": b.ServeCert, "tls.key": b.ServeKey} {
		p := filepath.Join(dir, name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
			continue
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	return nil
}
