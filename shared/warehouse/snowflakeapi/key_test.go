package snowflakeapi

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// PrivateKey reads the forms keys are stored in: PKCS#8 or PKCS#1, whatever the PEM label says,
// with newlines written as \n; and it says why it refuses the rest.
func TestPrivateKey(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(key)
	encode := func(label string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: label, Bytes: der}))
	}
	cases := []struct {
		name, pem, wantErr string
	}{
		{"PKCS#8", encode("PRIVATE KEY", pkcs8), ""},
		{"PKCS#1", encode("RSA PRIVATE KEY", pkcs1), ""},
		{"PKCS#8 labelled RSA", encode("RSA PRIVATE KEY", pkcs8), ""},
		{"escaped newlines", strings.ReplaceAll(encode("PRIVATE KEY", pkcs8), "\n", `\n`), ""},
		{"encrypted", encode("ENCRYPTED PRIVATE KEY", pkcs8), "encrypted"},
		{"not PEM", "MIIEvQIBADANBg", "no PEM block"},
		{"not a key", encode("PRIVATE KEY", []byte("garbage")), "neither PKCS#8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PrivateKey(tc.pem)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("PrivateKey: err %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("PrivateKey: %v", err)
			}
			if !got.Equal(key) {
				t.Fatal("PrivateKey read another key")
			}
		})
	}
}
