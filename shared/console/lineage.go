package console

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/lineage"
)

// Lineage builds the lineage graph the view draws (the stack's from its dbt target and template).
type Lineage func(ctx context.Context) (*lineage.Graph, error)

// LineageHandlers are the lineage view's endpoints, authorised as the page is: GET /api/lineage
// (the graph as JSON) and GET /dbt-docs/ (dbt's docs site, served by docs under that prefix).
// Add them to Handler's extra.
func LineageHandlers(token string, codes *Codes, graph Lineage, docs http.Handler) map[string]http.Handler {
	return map[string]http.Handler{
		"GET /api/lineage": authed(token, codes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The first graph may wait for dbt docs generate (its manifest, before any build).
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Minute)
			defer cancel()
			g, err := graph(ctx)
			if err != nil {
				http.Error(w, "lineage: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			json.NewEncoder(w).Encode(g)
		})),
		"GET /dbt-docs/": authed(token, codes, http.StripPrefix("/dbt-docs", docs)),
	}
}
