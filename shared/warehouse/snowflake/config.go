package snowflake

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
)

// SecretGetter reads a secret; *secretsmanager.Client is one.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// secretFields are what a Secrets Manager secret (SNOWFLAKE_SECRET_ID) may hold, as JSON. Each
// field given overrides the environment variable of the same meaning.
type secretFields struct {
	Account    string `json:"account"`
	User       string `json:"user"`
	PrivateKey string `json:"private_key"`
}

// ConfigFromEnv reads the loader's Snowflake settings:
//
//	SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_DATABASE  required
//	SNOWFLAKE_ROLE, SNOWFLAKE_WAREHOUSE                    optional (the user's defaults)
//	SNOWFLAKE_SCHEMA (RAW), SNOWFLAKE_STAGE (<schema>.BRONZE_STAGE)
//	SNOWFLAKE_PRIVATE_KEY   PEM (PKCS#8 or PKCS#1, unencrypted), or
//	SNOWFLAKE_SECRET_ID     a Secrets Manager secret {"private_key": PEM, "account": ..., "user": ...}
//	SNOWFLAKE_HOST, SNOWFLAKE_PORT, SNOWFLAKE_PROTOCOL  another server (fakesnow); empty for Snowflake
//	LOADER_TABLES           comma-separated source tables (customers,accounts,transactions)
//	LOADER_TIMEOUT          bound on one load, e.g. 2m
//
// secrets may be nil when no SNOWFLAKE_SECRET_ID is set.
func ConfigFromEnv(ctx context.Context, getenv func(string) string, secrets SecretGetter) (Config, error) {
	cfg := Config{
		Account: getenv("SNOWFLAKE_ACCOUNT"), User: getenv("SNOWFLAKE_USER"),
		Role: getenv("SNOWFLAKE_ROLE"), Warehouse: getenv("SNOWFLAKE_WAREHOUSE"),
		Database: getenv("SNOWFLAKE_DATABASE"), Schema: getenv("SNOWFLAKE_SCHEMA"),
		Stage: getenv("SNOWFLAKE_STAGE"), Host: getenv("SNOWFLAKE_HOST"), Protocol: getenv("SNOWFLAKE_PROTOCOL"),
	}
	var errs []error
	if p := getenv("SNOWFLAKE_PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("SNOWFLAKE_PORT=%q is not a port number", p))
		}
		cfg.Port = port
	}
	tables, err := warehouse.ParseTables(getenv("LOADER_TABLES"))
	if err != nil {
		errs = append(errs, fmt.Errorf("LOADER_TABLES: %w", err))
	}
	cfg.Tables = tables
	if t := getenv("LOADER_TIMEOUT"); t != "" {
		if cfg.Timeout, err = time.ParseDuration(t); err != nil || cfg.Timeout <= 0 {
			errs = append(errs, fmt.Errorf("LOADER_TIMEOUT=%q is not a positive duration such as 2m", t))
		}
	}

	keyPEM := getenv("SNOWFLAKE_PRIVATE_KEY")
	if id := getenv("SNOWFLAKE_SECRET_ID"); id != "" {
		s, err := readSecret(ctx, secrets, id)
		if err != nil {
			return cfg, err
		}
		keyPEM = firstOf(s.PrivateKey, keyPEM)
		cfg.Account, cfg.User = firstOf(s.Account, cfg.Account), firstOf(s.User, cfg.User)
	}
	for _, req := range []struct{ name, value string }{
		{"SNOWFLAKE_ACCOUNT", cfg.Account}, {"SNOWFLAKE_USER", cfg.User}, {"SNOWFLAKE_DATABASE", cfg.Database},
	} {
		if req.value == "" {
			errs = append(errs, fmt.Errorf("%s is not set", req.name))
		}
	}
	if keyPEM == "" {
		errs = append(errs, errors.New("no private key: set SNOWFLAKE_SECRET_ID (a secret with private_key) or SNOWFLAKE_PRIVATE_KEY"))
	} else if cfg.PrivateKey, err = ParsePrivateKey([]byte(keyPEM)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("snowflake configuration: %w", err)
	}
	return cfg, nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func readSecret(ctx context.Context, secrets SecretGetter, id string) (secretFields, error) {
	var s secretFields
	if secrets == nil {
		return s, fmt.Errorf("SNOWFLAKE_SECRET_ID is set but no Secrets Manager client was given")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &id})
	if err != nil {
		return s, fmt.Errorf("read secret %s: %w", id, err)
	}
	if out.SecretString == nil {
		return s, fmt.Errorf("secret %s has no string value", id)
	}
	if err := json.Unmarshal([]byte(*out.SecretString), &s); err != nil {
		// Never echo the secret: only say what shape was expected.
		return s, fmt.Errorf("secret %s is not a JSON object with private_key (and optionally account, user)", id)
	}
	return s, nil
}

// ParsePrivateKey reads an unencrypted RSA key in PEM, PKCS#8 or PKCS#1. Literal "\n" sequences
// are accepted for newlines, as a key pasted into one environment variable often has them.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	pemBytes = []byte(strings.ReplaceAll(string(pemBytes), `\n`, "\n"))
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("snowflake private key: no PEM block found")
	}
	if strings.Contains(block.Type, "ENCRYPTED") {
		return nil, errors.New("snowflake private key: encrypted keys are not supported; keep the key unencrypted in Secrets Manager (KMS encrypts it)")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("snowflake private key: %T, want RSA", k)
		}
		return rk, nil
	}
	k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("snowflake private key: neither PKCS#8 nor PKCS#1: %w", err)
	}
	return k, nil
}
