// Package localpg finds the project's own Postgres cluster (scripts/postgres.sh) for the local
// CLI and tests. No function links it: a Lambda takes its database from its settings
// (database.URLFrom).
package localpg

import "os"

// Defaults of the project's own cluster, started by scripts/postgres.sh.
const (
	defaultPort     = "5433"
	defaultPassfile = "/var/lib/fin-orchestrator/pgpass-"
)

// URL returns the connection string to use: DATABASE_URL when set, otherwise the project's own
// local cluster. For the local cluster it points PGPASSFILE at the file the start script wrote,
// so no password ever sits in a URL, a log line or the repository.
//
// A DATABASE_URL without a password also finds the local cluster's password this way, so another
// database on the same cluster needs no password in its URL either.
func URL() string {
	port := os.Getenv("FIN_PG_PORT")
	if port == "" {
		port = defaultPort
	}
	if os.Getenv("PGPASSFILE") == "" {
		passfile := os.Getenv("FIN_PGPASSFILE")
		if passfile == "" {
			passfile = defaultPassfile + port
		}
		if _, err := os.Stat(passfile); err == nil {
			os.Setenv("PGPASSFILE", passfile)
		}
	}
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://fin@127.0.0.1:" + port + "/fin?sslmode=disable"
}
