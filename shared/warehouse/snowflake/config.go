package snowflake

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/snowflakeapi"
)

// ConfigFromEnv reads the loader's Snowflake settings:
//
//	SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_DATABASE  required
//	SNOWFLAKE_ROLE, SNOWFLAKE_WAREHOUSE                    optional (the user's defaults)
//	SNOWFLAKE_SCHEMA (RAW), SNOWFLAKE_STAGE (<schema>.BRONZE_STAGE)
//	SNOWFLAKE_PRIVATE_KEY   PEM (PKCS#8 or PKCS#1, unencrypted), or
//	SNOWFLAKE_SECRET_ID     a Secrets Manager secret {"private_key": PEM, "account": ..., "user": ...}
//	SNOWFLAKE_HOST, SNOWFLAKE_PORT, SNOWFLAKE_PROTOCOL  another server (fakesnow); empty for Snowflake
//	LOADER_TABLES           comma-separated source tables (customers,accounts,transactions,snapshot_windows,transaction_metadata)
//	LOADER_TIMEOUT          bound on one load, e.g. 2m
//
// The account, user, key and session settings are read as the API's SQL API client reads them
// (snowflakeapi.ConfigFromEnv), so one secret serves both (in Lambda, awssecrets.Client reads
// it). secrets may be nil when no SNOWFLAKE_SECRET_ID is set.
func ConfigFromEnv(ctx context.Context, getenv func(string) string, secrets snowflakeapi.SecretReader) (Config, error) {
	login, err := snowflakeapi.ConfigFromEnv(ctx, getenv, secrets)
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
