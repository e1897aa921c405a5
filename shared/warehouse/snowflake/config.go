package snowflake

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflakeapi"
)

// SecretGetter reads a secret; *secretsmanager.Client is one.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
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
// The account, user, key and session settings are read as the API's SQL API client reads them
// (snowflakeapi.ConfigFromEnv), so one secret serves both. secrets may be nil when no
// SNOWFLAKE_SECRET_ID is set.
func ConfigFromEnv(ctx context.Context, getenv func(string) string, secrets SecretGetter) (Config, error) {
	var reader snowflakeapi.SecretReader
	if secrets != nil {
		reader = secretReader{secrets}
	}
	login, err := snowflakeapi.ConfigFromEnv(ctx, getenv, reader)
	errs := []error{err}
	cfg := Config{
		Account: login.Account, User: login.User, Role: login.Role, Warehouse: login.Warehouse,
		Database: login.Database, Schema: login.Schema, PrivateKey: login.PrivateKey,
		Stage: getenv("SNOWFLAKE_STAGE"), Host: getenv("SNOWFLAKE_HOST"), Protocol: getenv("SNOWFLAKE_PROTOCOL"),
	}
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
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("snowflake configuration: %w", err)
	}
	return cfg, nil
}

// secretReader reads a secret's string through the SDK's client, bounded in time.
type secretReader struct{ sm SecretGetter }

func (r secretReader) String(ctx context.Context, id string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := r.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &id})
	if err != nil {
		return "", err
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("secret %s has no string value", id)
	}
	return *out.SecretString, nil
}

// ParsePrivateKey reads an unencrypted RSA key in PEM, PKCS#8 or PKCS#1 (literal "\n" read as
// newlines); see snowflakeapi.PrivateKey.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	k, err := snowflakeapi.PrivateKey(string(pemBytes))
	if err != nil {
		return nil, fmt.Errorf("snowflake %w", err)
	}
	return k, nil
}
