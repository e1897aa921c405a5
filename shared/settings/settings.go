// Package settings declares every environment variable the functions read (name, default,
// meaning, and which function reads it) and is the only way they read one. The Lambda mains, the
// local stack (`fin up`) and `fin api` all build a function from an Env bound to that function:
// reading a name the function does not declare is an error the constructor returns, and
// docs/configuration.md is generated from the declarations (go generate ./shared/settings).
package settings

//go:generate go run ../../cmd/fin settings -markdown -o ../../docs/configuration.md

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The functions, by the name of their folder under functions/ (and their EMF Function dimension).
const (
	API     = "api"
	Landing = "cdc-landing"
	Loader  = "warehouse-loader"
	DBT     = "dbt-runner"
)

// Functions lists every function, in the order the docs show them.
var Functions = []string{API, Landing, Loader, DBT}

// Setting is one environment variable.
type Setting struct {
	Name string
	// Default is the value when the variable is unset or empty ("" for none).
	Default string
	Meaning string
	// Functions are the functions that read it.
	Functions []string
	// Lambda marks variables the Lambda runtime sets itself (the region, the role's credentials):
	// the template does not set them and neither does a `sam local` env-vars file.
	Lambda bool
	// Dbt marks variables dbt itself reads (dbt/profiles.yml's env_var): the dbt-runner hands
	// them to dbt's process.
	Dbt bool
}

// ReadBy reports whether function declares s.
func (s Setting) ReadBy(function string) bool { return slices.Contains(s.Functions, function) }

var (
	snowflakeUsers = []string{API, Loader, DBT}
	secretUsers    = []string{API, Loader, DBT}
)

// declared is every setting. Keep it sorted by function, then name; the docs follow this order.
var declared = []Setting{
	// The API.
	{Name: "DATABASE_URL", Functions: []string{API},
		Meaning: "Postgres connection URL (no password in it: pgx reads PGPASSFILE). Wins over DATABASE_SECRET_ARN."},
	{Name: "DATABASE_SECRET_ARN", Functions: []string{API},
		Meaning: `Secrets Manager secret holding the Postgres URL (a JSON object with "url", or the bare URL).`},
	{Name: "FIN_JWKS_URL", Functions: []string{API},
		Meaning: "JWKS endpoint of the identity provider whose RS256/ES256 tokens the API accepts. Either this or FIN_JWT_SECRET."},
	{Name: "FIN_JWT_SECRET", Functions: []string{API},
		Meaning: "HS256 shared secret for tokens (local development and tests). Locally, with neither this nor FIN_JWKS_URL, the development secret file `fin token` shares is used."},
	{Name: "FIN_JWT_ISSUER", Functions: []string{API},
		Meaning: "`iss` tokens must carry: required with FIN_JWKS_URL (e.g. https://cognito-idp.<region>.amazonaws.com/<pool id>); with a shared secret the local default is `fin-orchestrator-local`."},
	{Name: "FIN_JWT_AUDIENCE", Functions: []string{API},
		Meaning: "The audience: a token's `aud`, or its `client_id` when it has no `aud` (Cognito access tokens), must match, as API Gateway's JWT authorizer checks. Required with FIN_JWKS_URL; with a shared secret the local default is `fin-local`."},
	{Name: "FIN_JWT_SCOPE_MAP", Functions: []string{API},
		Meaning: "Which API scope each identity-provider scope grants: `<provider scope>=bank:read|bank:write|bank:service`, comma-separated (e.g. `fin-api/read=bank:read,fin-api/write=bank:write,fin-api/service=bank:service` for a Cognito resource server); `bank:read`/`bank:write`/`bank:service` themselves always count."},
	{Name: "FIN_JWT_CUSTOMER_CLAIM", Default: "customer_id", Functions: []string{API},
		Meaning: "The claim that binds a token to one customer (a UUID string): such a token sees and moves only that customer's data. A token without it needs the scope `bank:service`. For Cognito, a claim a pre-token-generation trigger adds to access tokens; for Auth0, a namespaced claim an Action adds (e.g. `https://fin.example/customer_id`)."},
	{Name: "FIN_API_ACCOUNT_PIPELINE", Default: "0", Functions: []string{API},
		Meaning: "Above 0: GET /accounts/{id} batches go through one connection of their own in pipeline mode, up to this many sent before the first is answered (`fin api` sets 2); 0: each GET its own query, as in Lambda (one request at a time)."},

	// The landing.
	{Name: "LAKE_BUCKET", Functions: []string{Landing}, Meaning: "Bucket receiving bronze/ and dlq/ objects (required)."},
	{Name: "FAIL_BATCH", Default: "false", Functions: []string{Landing},
		Meaning: "`true` when the trigger lacks FunctionResponseTypes ReportBatchItemFailures: any failure then fails the whole invocation, so nothing unlanded is acknowledged."},
	{Name: "S3_ENDPOINT", Functions: []string{Landing}, Meaning: "An S3-compatible endpoint (http://127.0.0.1:9000); empty means Amazon S3."},

	// The loader.
	{Name: "LOADER_TABLES", Default: "customers,accounts,transactions,snapshot_windows,transaction_metadata", Functions: []string{Loader},
		Meaning: "Comma-separated source tables whose bronze objects are loaded; objects of any other table fail as unknown."},
	{Name: "LOADER_TIMEOUT", Functions: []string{Loader}, Meaning: "Bound on one load, a Go duration such as 4m (none when empty)."},
	{Name: "BUILD_QUEUE_URL", Functions: []string{Loader, DBT},
		Meaning: "SQS queue the loader tells which RAW tables got rows after each commit, for dbt to build what follows them (none when empty); the dbt-runner reads it after each build and builds at once what waited there."},
	{Name: "SNOWFLAKE_STAGE", Functions: []string{Loader}, Meaning: "External stage over the bronze bucket (default <schema>.BRONZE_STAGE)."},

	// Snowflake: the loader writes RAW, the API reads GOLD, dbt builds SILVER and GOLD.
	{Name: "SNOWFLAKE_ACCOUNT", Functions: snowflakeUsers, Dbt: true,
		Meaning: "Snowflake account identifier (or the secret's `account`)."},
	{Name: "SNOWFLAKE_USER", Functions: snowflakeUsers, Dbt: true, Meaning: "Snowflake user (or the secret's `user`)."},
	{Name: "SNOWFLAKE_DATABASE", Functions: snowflakeUsers, Dbt: true,
		Meaning: "Snowflake database. For the API: when set, the history endpoints read GOLD from it; unset, they answer 503 (AWS only: locally history reads DuckDB)."},
	{Name: "SNOWFLAKE_WAREHOUSE", Functions: snowflakeUsers, Dbt: true, Meaning: "Virtual warehouse (the user's default when empty)."},
	{Name: "SNOWFLAKE_ROLE", Functions: snowflakeUsers, Dbt: true,
		Meaning: "Role (least privilege: LOADER writes RAW, READER reads GOLD, TRANSFORMER builds SILVER and GOLD)."},
	{Name: "SNOWFLAKE_SCHEMA", Functions: snowflakeUsers, Dbt: true, Meaning: "Schema (RAW for the loader; dbt's target schema)."},
	{Name: "SNOWFLAKE_PRIVATE_KEY", Functions: snowflakeUsers, Dbt: true,
		Meaning: "PEM private key for key-pair login, when no SNOWFLAKE_SECRET_ID names a secret holding it."},
	{Name: "SNOWFLAKE_SECRET_ID", Functions: snowflakeUsers,
		Meaning: "Secrets Manager secret {\"private_key\", \"account\", \"user\"}; its fields win over the variables."},
	{Name: "SNOWFLAKE_HOST", Functions: snowflakeUsers, Dbt: true,
		Meaning: "Another server speaking Snowflake's protocol (fakesnow in tests); empty for Snowflake itself."},
	{Name: "SNOWFLAKE_PORT", Functions: snowflakeUsers, Dbt: true, Meaning: "Port of SNOWFLAKE_HOST."},
	{Name: "SNOWFLAKE_PROTOCOL", Functions: snowflakeUsers, Dbt: true, Meaning: "`http` or `https` for SNOWFLAKE_HOST (https when empty)."},

	// dbt.
	{Name: "DBT_BIN", Default: "dbt", Functions: []string{DBT}, Meaning: "The dbt executable."},
	{Name: "DBT_PROJECT_DIR", Default: "/var/task/dbt", Functions: []string{DBT}, Meaning: "The dbt project (the image's copy of dbt/)."},
	{Name: "DBT_PROFILES_DIR", Functions: []string{DBT}, Meaning: "Folder of profiles.yml (DBT_PROJECT_DIR when empty)."},
	{Name: "DBT_TARGET", Default: "snowflake", Functions: []string{DBT}, Dbt: true, Meaning: "Profile target: snowflake, or duckdb locally."},
	{Name: "DBT_WORK_DIR", Default: "/tmp/dbt", Functions: []string{DBT},
		Meaning: "Where dbt writes target/ and logs/ (Lambda's only writable place is /tmp)."},
	{Name: "DBT_THREADS", Default: "4", Functions: []string{DBT}, Dbt: true,
		Meaning: "dbt threads on DuckDB (locally one per core, at most four, unless set)."},
	{Name: "SNOWFLAKE_THREADS", Default: "4", Functions: []string{DBT}, Dbt: true, Meaning: "dbt threads on Snowflake."},
	{Name: "SNOWFLAKE_PASSWORD", Functions: []string{DBT}, Dbt: true,
		Meaning: "Password login for dbt (fakesnow in tests only; AWS uses the key pair)."},
	{Name: "DUCKDB_MEMORY_LIMIT", Default: "512MB", Functions: []string{DBT}, Dbt: true,
		Meaning: "DuckDB's memory_limit (duckdb target): past it DuckDB evicts cached blocks and spills to disk, where its default, 80% of the machine's RAM, let memory grow with the warehouse. The local stack holds its own DuckDB (RAW, queries) to the same limit."},
	{Name: "WAREHOUSE_PATH", Default: "../.fin/warehouse.duckdb", Functions: []string{DBT}, Dbt: true,
		Meaning: "DuckDB file of silver and gold (duckdb target; the local stack sets it)."},
	{Name: "RAW_SNAPSHOT_PATH", Functions: []string{DBT}, Dbt: true,
		Meaning: "Snapshot of RAW that dbt attaches read-only (duckdb target; the local stack takes one before each build)."},
	{Name: "RAW_DATABASE", Functions: []string{DBT}, Dbt: true, Meaning: "Catalog the sources read RAW from (duckdb target)."},

	// Set by Lambda.
	{Name: "AWS_REGION", Functions: []string{API, Landing, Loader, DBT}, Lambda: true, Meaning: "The function's region."},
	{Name: "AWS_DEFAULT_REGION", Functions: secretUsers, Lambda: true, Meaning: "The region, when AWS_REGION is not set."},
	{Name: "AWS_ACCESS_KEY_ID", Functions: Functions, Lambda: true,
		Meaning: "The role's credentials (Secrets Manager, S3); `fin up` gives the landing and the loader the local S3's key (`.fin/s3-credentials`)."},
	{Name: "AWS_SECRET_ACCESS_KEY", Functions: Functions, Lambda: true, Meaning: "The role's credentials."},
	{Name: "AWS_SESSION_TOKEN", Functions: Functions, Lambda: true, Meaning: "The role's credentials."},
	{Name: "AWS_ENDPOINT_URL_SECRETS_MANAGER", Functions: secretUsers,
		Meaning: "Another Secrets Manager endpoint (LocalStack, Moto); the regional one when empty."},
}

// All returns every declared setting.
func All() []Setting { return slices.Clone(declared) }

// For returns the settings function declares, sorted by name: what a `sam local` env-vars file
// or a deployment must consider for it.
func For(function string) []Setting {
	var out []Setting
	for _, s := range declared {
		if s.ReadBy(function) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the declaration of name.
func Lookup(name string) (Setting, bool) {
	for _, s := range declared {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}

// Source answers one variable: its value and whether it is set.
type Source func(name string) (string, bool)

// Process is the process environment (a Lambda's, or fin's own).
func Process() Source { return os.LookupEnv }

// Values is a fixed set of variables.
func Values(m map[string]string) Source {
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

// Environ is the process environment as NAME=value entries, to hand whole to a child process
// (dbt), which reads only what dbt/profiles.yml names: those names are declared (Dbt) and a test
// holds profiles.yml to them.
func Environ() []string { return os.Environ() }

// Env is the environment of one function: the variables it declares, read from sources (a later
// source wins over an earlier one; an empty value counts as unset), else their defaults. Reading a
// name the function does not declare gives "" and makes Err fail.
type Env struct {
	function string
	sources  []Source
	mu       sync.Mutex
	read     map[string]bool
	errs     []error
}

// ForFunction returns function's environment read from sources, later ones winning.
func ForFunction(function string, sources ...Source) *Env {
	return &Env{function: function, sources: sources, read: map[string]bool{}}
}

// Set returns name's value and whether a source sets it (not empty); a declared default does not
// count.
func (e *Env) Set(name string) (string, bool) {
	s, ok := Lookup(name)
	e.mu.Lock()
	e.read[name] = true
	if !ok || !s.ReadBy(e.function) {
		e.errs = append(e.errs, fmt.Errorf("%s reads %s, which shared/settings does not declare for it", e.function, name))
		e.mu.Unlock()
		return "", false
	}
	e.mu.Unlock()
	for i := len(e.sources) - 1; i >= 0; i-- {
		if v, ok := e.sources[i](name); ok && v != "" {
			return v, true
		}
	}
	return "", false
}

// Get returns name's value, else its declared default.
func (e *Env) Get(name string) string {
	if v, ok := e.Set(name); ok {
		return v
	}
	s, _ := Lookup(name)
	return s.Default
}

// Bool reads a true/false setting; anything else is an error naming it.
func (e *Env) Bool(name string) (bool, error) {
	v := e.Get(name)
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q is not true or false", name, v)
	}
	return b, nil
}

// Int reads an integer setting; anything else is an error naming it.
func (e *Env) Int(name string) (int, error) {
	v := e.Get(name)
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an integer", name, v)
	}
	return n, nil
}

// DbtEnv returns NAME=value for each variable dbt reads that a source sets, for dbt's process.
func (e *Env) DbtEnv() []string {
	var out []string
	for _, s := range For(e.function) {
		if !s.Dbt {
			continue
		}
		if v, ok := e.Set(s.Name); ok {
			out = append(out, s.Name+"="+v)
		}
	}
	return out
}

// Read returns the names read so far, sorted.
func (e *Env) Read() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.read))
	for n := range e.read {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Err joins the reads of undeclared names.
func (e *Env) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return errors.Join(e.errs...)
}

// Markdown is docs/configuration.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString(`# Configuration

<!-- Generated from shared/settings by "go generate ./shared/settings"; do not edit. -->

Every environment variable a function reads is declared once in ` + "`shared/settings`" + ` (name,
default, meaning, the functions that read it), and read only through it: the Lambda's ` + "`main.go`" + `,
` + "`fin up`" + ` and ` + "`fin api`" + ` build each function with the same constructor from the same
declarations. A function that reads a variable it does not declare fails to start, and a test fails
when this page is stale. ` + "`fin settings -function api -json`" + ` lists one function's settings.

In AWS the values come from ` + "`template.yaml`" + ` (each function's ` + "`Environment`" + `); ` + "`fin up`" + `
starts from the same blocks, puts its local parts in place (bucket, DuckDB files, dbt target) and
lets the process environment override any declared variable. Variables marked *Lambda* are set by
the Lambda runtime, not by the template. Third-party libraries read their own (pgx: ` + "`PG*`" + `, the
AWS SDK: ` + "`AWS_*`" + `); they are not listed.
`)
	for _, fn := range Functions {
		fmt.Fprintf(&b, "\n## %s\n\n| variable | default | meaning |\n|---|---|---|\n", fn)
		for _, s := range For(fn) {
			meaning := s.Meaning
			if s.Lambda {
				meaning = "*Lambda.* " + meaning
			}
			if s.Dbt && fn == DBT {
				meaning += " Handed to dbt (profiles.yml reads it)."
			}
			def := ""
			if s.Default != "" {
				def = "`" + s.Default + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, def, strings.ReplaceAll(meaning, "|", `\|`))
		}
	}
	return b.String()
}
