package console

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Verifier checks an operator's bearer token by the API's rules (shared/stack gives it the API's
// own verifier): the token's subject and scopes, or why it is refused.
type Verifier interface {
	Verify(header string) (subject string, scopes []string, err error)
}

// Action is one thing an operator does to the pipeline: args is the request's JSON body ({} when
// empty); the outcome says what came of it. An error wrapping ErrBadArgs is the caller's (400).
type Action func(ctx context.Context, args json.RawMessage) (outcome string, err error)

// ErrBadArgs marks an action's refusal of its arguments.
var ErrBadArgs = errors.New("bad arguments")

// Record is one action an operator took, as the audit log keeps it.
type Record struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Subject string          `json:"subject"`
	Action  string          `json:"action"`
	Args    json.RawMessage `json:"args"`
	OK      bool            `json:"ok"`
	Outcome string          `json:"outcome"`
}

// Audit is the record of every action: an append-only file of JSON lines, each synced before the
// action's answer, so the list survives restarts and a crash loses no answered action.
type Audit struct {
	mu   sync.Mutex
	path string
	next int64
}

// OpenAudit opens (or starts) the audit log at path.
func OpenAudit(path string) (*Audit, error) {
	a := &Audit{path: path, next: 1}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	all, err := a.read()
	if err != nil {
		return nil, err
	}
	if n := len(all); n > 0 {
		a.next = all[n-1].ID + 1
	}
	return a, nil
}

// read returns every record, oldest first. A torn last line (a crash mid-write, never answered)
// is skipped.
func (a *Audit) read() ([]Record, error) {
	f, err := os.Open(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	var all []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.ID > 0 {
			all = append(all, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", a.path, err)
	}
	return all, nil
}

// Append numbers r, writes it and syncs the file.
func (a *Audit) Append(r Record) (Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r.ID = a.next
	line, err := json.Marshal(r)
	if err != nil {
		return r, err
	}
	f, err := os.OpenFile(a.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return r, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return r, fmt.Errorf("audit log %s: %w", a.path, err)
	}
	if err := f.Sync(); err != nil {
		return r, fmt.Errorf("audit log %s: %w", a.path, err)
	}
	a.next++
	return r, nil
}

// List returns up to limit records with an id below before (0: from the newest), newest first:
// a page of the log, keyed by id.
func (a *Audit) List(before int64, limit int) ([]Record, error) {
	a.mu.Lock()
	all, err := a.read()
	a.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := []Record{}
	for _, r := range slices.Backward(all) {
		if len(out) == limit {
			break
		}
		if before == 0 || r.ID < before {
			out = append(out, r)
		}
	}
	return out, nil
}

// ActionHandlers serve POST /api/actions/{name} for each action, for an operator's bearer token
// alone (the console's cookie or token does not act: 401 without a token the verifier accepts,
// 403 without scope), and the audit log at GET /api/actions?before=<id>&limit=<n> for the
// console's token, as its page reads it.
func ActionHandlers(token string, codes *Codes, v Verifier, scope string, audit *Audit, actions map[string]Action) map[string]http.Handler {
	h := map[string]http.Handler{}
	for name, act := range actions {
		h["POST /api/actions/"+name] = operator(v, scope, func(w http.ResponseWriter, r *http.Request, subject string) {
			act.serve(w, r, name, subject, audit)
		})
	}
	h["GET /api/actions"] = authed(token, codes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit <= 0 || limit > 500 {
			limit = 50
		}
		list, err := audit.List(before, limit)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(list)
	}))
	return h
}

// SignInHandler answers POST /api/operator-token for a console session with a short-lived
// operator token from issue: the local stand-in for signing in at the IdP (Cognito's hosted UI in
// AWS), so the page acts without a terminal. The stack mounts it only when it signs tokens itself
// (the development secret, which the console's user can read anyway); with a real IdP the
// operator pastes a token the IdP issued.
func SignInHandler(token string, codes *Codes, issue func() (string, error)) http.Handler {
	return authed(token, codes, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := issue()
		if err != nil {
			http.Error(w, "sign in: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]string{"token": tok})
	}))
}

// operator lets a request through with a token v accepts that carries scope.
func operator(v Verifier, scope string, next func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject, scopes, err := v.Verify(r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fin operator"`)
			http.Error(w, "an action needs an operator's token (fin token --scopes "+scope+"): "+err.Error(), http.StatusUnauthorized)
			return
		}
		if !slices.Contains(scopes, scope) {
			w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+scope+`"`)
			http.Error(w, "this token cannot act on the pipeline: it needs the scope "+scope, http.StatusForbidden)
			return
		}
		next(w, r, subject)
	})
}

// actionTimeout bounds one action: each only asks (a queued build, a signal, records produced).
const actionTimeout = time.Minute

// serve runs the action and records it, whatever came of it, before answering with the record.
func (act Action) serve(w http.ResponseWriter, r *http.Request, name, subject string, audit *Audit) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err == nil && !json.Valid(body) {
		err = fmt.Errorf("%w: the body is not JSON", ErrBadArgs)
	}
	rec := Record{At: time.Now().UTC(), Subject: subject, Action: name, Args: json.RawMessage(bytes.TrimSpace(body))}
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
		rec.Outcome, err = act(ctx, rec.Args)
		cancel()
	}
	status := http.StatusOK
	if rec.OK = err == nil; err != nil {
		rec.Outcome, status = err.Error(), http.StatusBadGateway
		if errors.Is(err, ErrBadArgs) {
			status = http.StatusBadRequest
		}
	}
	if !json.Valid(rec.Args) {
		rec.Args = json.RawMessage(strconv.Quote(string(rec.Args)))
	}
	if rec, err = audit.Append(rec); err != nil {
		http.Error(w, fmt.Sprintf("%s: %s, but not recorded: %v", name, rec.Outcome, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(rec)
}
