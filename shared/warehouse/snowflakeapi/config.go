package snowflakeapi

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// SecretReader returns a secret's string; awssecrets.Client is one.
type SecretReader interface {
	String(ctx context.Context, id string) (string, error)
}

// ConfigFromEnv reads the same variables as the loader (so one secret serves both):
//
//	SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_DATABASE  required
//	SNOWFLAKE_ROLE, SNOWFLAKE_WAREHOUSE, SNOWFLAKE_SCHEMA  optional (the user's defaults)
//	SNOWFLAKE_PRIVATE_KEY  PEM (PKCS#8 or PKCS#1, unencrypted), or
//	SNOWFLAKE_SECRET_ID    a secret {"private_key": PEM, "account": ..., "user": ...}; its fields win
//	SNOWFLAKE_HOST, SNOWFLAKE_PORT, SNOWFLAKE_PROTOCOL  another server; empty for Snowflake
//
// secrets may be nil when SNOWFLAKE_SECRET_ID is not set. Every problem found is in the error,
// one per line; never the key.
func ConfigFromEnv(ctx context.Context, getenv func(string) string, secrets SecretReader) (Config, error) {
	cfg := Config{
		Account: getenv("SNOWFLAKE_ACCOUNT"), User: getenv("SNOWFLAKE_USER"), Role: getenv("SNOWFLAKE_ROLE"),
		Warehouse: getenv("SNOWFLAKE_WAREHOUSE"), Database: getenv("SNOWFLAKE_DATABASE"), Schema: getenv("SNOWFLAKE_SCHEMA"),
	}
	if host := getenv("SNOWFLAKE_HOST"); host != "" {
		proto := cmp.Or(getenv("SNOWFLAKE_PROTOCOL"), "https")
		cfg.BaseURL = proto + "://" + host
		if port := getenv("SNOWFLAKE_PORT"); port != "" {
			cfg.BaseURL += ":" + port
		}
	}
	keyPEM := getenv("SNOWFLAKE_PRIVATE_KEY")
	if id := getenv("SNOWFLAKE_SECRET_ID"); id != "" {
		if secrets == nil {
			return cfg, errors.New("SNOWFLAKE_SECRET_ID is set but no secret reader was given")
		}
		raw, err := secrets.String(ctx, id)
		if err != nil {
			return cfg, fmt.Errorf("read secret %s: %w", id, err)
		}
		var s struct {
			Account    string `json:"account"`
			User       string `json:"user"`
			PrivateKey string `json:"private_key"`
		}
		if json.Unmarshal([]byte(raw), &s) != nil {
			// Never echo the secret: only say what shape was expected.
			return cfg, fmt.Errorf("secret %s is not a JSON object with private_key (and optionally account, user)", id)
		}
		keyPEM = cmp.Or(s.PrivateKey, keyPEM)
		cfg.Account, cfg.User = cmp.Or(s.Account, cfg.Account), cmp.Or(s.User, cfg.User)
	}
	var errs []error
	for _, req := range []struct{ name, value string }{
		{"SNOWFLAKE_ACCOUNT", cfg.Account}, {"SNOWFLAKE_USER", cfg.User}, {"SNOWFLAKE_DATABASE", cfg.Database},
	} {
		if req.value == "" {
			errs = append(errs, fmt.Errorf("%s is not set", req.name))
		}
	}
	if keyPEM == "" {
		errs = append(errs, errors.New("no private key: set SNOWFLAKE_SECRET_ID (a secret with private_key) or SNOWFLAKE_PRIVATE_KEY"))
	} else {
		key, err := PrivateKey(keyPEM)
		cfg.PrivateKey = key
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

// PrivateKey reads an unencrypted RSA key from PEM (PKCS#8 or PKCS#1). A key pasted into one
// environment variable often has literal \n for its newlines; those are read as newlines.
func PrivateKey(pemText string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(strings.ReplaceAll(pemText, `\n`, "\n")))
	switch {
	case block == nil:
		return nil, errors.New("private key: no PEM block")
	case strings.Contains(block.Type, "ENCRYPTED"):
		return nil, errors.New("private key: encrypted; store it unencrypted in Secrets Manager (KMS encrypts the secret)")
	}
	// PKCS#8 first whatever the label says (keys are often mislabelled), then PKCS#1.
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		k1, err1 := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err1 != nil {
			return nil, fmt.Errorf("private key: neither PKCS#8 (%v) nor PKCS#1 (%v)", err, err1)
		}
		return k1, nil
	}
	if rk, ok := k.(*rsa.PrivateKey); ok {
		return rk, nil
	}
	return nil, fmt.Errorf("private key: a %T key; Snowflake key-pair login needs RSA", k)
}
