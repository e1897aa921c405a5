package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/buildrequest"
	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
	"github.com/fin-orchestrator/fin-orchestrator/shared/strictjson"
)

// SignalTable is the capture's signal table (Debezium's signal.data.collection), where a
// re-snapshot is asked for.
const SignalTable = "public.debezium_signal"

// AuditPath is the console's audit log of operators' actions under a state directory.
func AuditPath(stateDir string) string { return filepath.Join(stateDir, "console", "actions.jsonl") }

// actionHandlers are the operator's actions (build, dlq-replay, snapshot), each one endpoint the
// page and its `fin` command call, authorised by the API's own token check with the operator
// scope, and recorded in the audit log.
func (s *Stack) actionHandlers(v console.Verifier) (map[string]http.Handler, error) {
	audit, err := console.OpenAudit(AuditPath(s.cfg.StateDir))
	if err != nil {
		return nil, err
	}
	h := console.ActionHandlers(s.token, &s.codes, v, api.ScopeOperator, audit, map[string]console.Action{
		"build":      s.buildNow,
		"dlq-replay": s.replayAction,
		"snapshot":   s.snapshotAction,
	})
	if auth := s.apiAuth; auth.JWKSURL == "" && len(auth.Secret) > 0 {
		h["POST /api/operator-token"] = console.SignInHandler(s.token, &s.codes, func() (string, error) {
			return auth.IssueToken(ConsoleOperator, []string{api.ScopeOperator}, operatorTokenTTL)
		})
	}
	return h, nil
}

// ConsoleOperator is the subject of the tokens the console's local sign-in issues (the audit
// log's "by"), and operatorTokenTTL their life: long enough for a session at the page, short
// enough that a copied one soon stops working.
const (
	ConsoleOperator  = "console-operator"
	operatorTokenTTL = 15 * time.Minute
)

// decodeArgs reads an action's arguments into v, refusing unknown fields.
func decodeArgs(args json.RawMessage, v any) error {
	if err := strictjson.Unmarshal(args, v); err != nil {
		return fmt.Errorf("%w: %v", console.ErrBadArgs, err)
	}
	return nil
}

// buildNow asks for a dbt build ({"model": "<name>"}: that model and its children; {}:
// everything) the way a committed load does: a message on the loader's BUILD_QUEUE_URL, which the
// dbt-runner's SQS event source takes.
func (s *Stack) buildNow(ctx context.Context, args json.RawMessage) (string, error) {
	var a struct {
		Model string `json:"model"`
	}
	if err := decodeArgs(args, &a); err != nil {
		return "", err
	}
	msg, what := buildrequest.Message{All: true}, "everything"
	if a.Model != "" {
		if err := s.knownModel(a.Model); err != nil {
			return "", err
		}
		msg, what = buildrequest.Message{Model: a.Model}, a.Model+" and its children"
	}
	url := FunctionEnv(s.tpl, loaderFunction, settings.Loader, nil, nil).Get("BUILD_QUEUE_URL")
	q := s.queues[url]
	if q == nil {
		return "", fmt.Errorf("build: %s has no build queue (BUILD_QUEUE_URL %q)", loaderFunction, url)
	}
	body, _ := json.Marshal(msg)
	if err := q.SendMessage(ctx, string(body)); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	return fmt.Sprintf("a build of %s is queued on %s", what, q.Name), nil
}

// knownModel refuses a model the last build's manifest does not have (dbt would build nothing
// and call it a success). Before any build there is no manifest to ask: the name's form is checked.
func (s *Stack) knownModel(name string) error {
	if !buildrequest.ModelName.MatchString(name) {
		return fmt.Errorf("%w: %q is not a model name", console.ErrBadArgs, name)
	}
	raw, err := os.ReadFile(filepath.Join(s.cfg.StateDir, "dbt", "target", "manifest.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	var m struct {
		Nodes map[string]struct {
			Name         string `json:"name"`
			ResourceType string `json:"resource_type"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("build: dbt's manifest: %w", err)
	}
	var models []string
	for _, n := range m.Nodes {
		if n.ResourceType == "model" {
			if n.Name == name {
				return nil
			}
			models = append(models, n.Name)
		}
	}
	slices.Sort(models)
	return fmt.Errorf("%w: dbt has no model %q (models: %s)", console.ErrBadArgs, name, strings.Join(models, ", "))
}

// replayAction replays DLQ entries ({"keys": [...]}, or {} for all of them) through replayDLQ,
// going on past an entry that fails and naming it.
func (s *Stack) replayAction(ctx context.Context, args json.RawMessage) (string, error) {
	var a struct {
		Keys []string `json:"keys"`
	}
	if err := decodeArgs(args, &a); err != nil {
		return "", err
	}
	for _, k := range a.Keys {
		if !strings.HasPrefix(k, "dlq/") {
			return "", fmt.Errorf("%w: %q is not a dlq/ object key", console.ErrBadArgs, k)
		}
	}
	if len(a.Keys) == 0 {
		for obj := range s.s3.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: "dlq/", Recursive: true}) {
			if obj.Err != nil {
				return "", fmt.Errorf("list the DLQ: %w", obj.Err)
			}
			a.Keys = append(a.Keys, obj.Key)
		}
	}
	var failed []error
	for _, k := range a.Keys {
		if err := s.replayDLQ(ctx, s.producer, k); err != nil {
			failed = append(failed, err)
		}
	}
	done := fmt.Sprintf("replayed %d of %d DLQ entries", len(a.Keys)-len(failed), len(a.Keys))
	if len(failed) > 0 {
		return "", fmt.Errorf("%s: %w", done, errors.Join(failed...))
	}
	return done, nil
}

// snapshotAction asks the capture for an online incremental snapshot ({"tables":
// ["public.accounts"]}, "public." optional; {} for every captured table) through its signal table,
// as Debezium's execute-snapshot signal.
func (s *Stack) snapshotAction(ctx context.Context, args json.RawMessage) (string, error) {
	var a struct {
		Tables []string `json:"tables"`
	}
	if err := decodeArgs(args, &a); err != nil {
		return "", err
	}
	names, err := SnapshotTables(a.Tables)
	if err != nil {
		return "", err
	}
	id, err := capture.RequestSnapshot(ctx, s.cfg.Pool, SignalTable, names)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("incremental snapshot of %s requested (signal %s)", strings.Join(names, ", "), id), nil
}

// SnapshotTables reads the tables a re-snapshot names: captured tables, "public." optional, each
// once; none means every captured table.
func SnapshotTables(tables []string) ([]string, error) {
	if len(tables) == 0 {
		return slices.Clone(capture.DefaultTables), nil
	}
	var names []string
	for _, t := range tables {
		t = strings.TrimSpace(t)
		if !strings.Contains(t, ".") {
			t = "public." + t
		}
		if !slices.Contains(capture.DefaultTables, t) {
			return nil, fmt.Errorf("%w: %s is not a captured table (captured: %s)", console.ErrBadArgs, t, strings.Join(capture.DefaultTables, ", "))
		}
		if !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	return names, nil
}
