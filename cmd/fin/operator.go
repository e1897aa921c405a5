package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
)

// consoleBase is the running stack's console (FIN_CONSOLE_URL, or the default address).
func consoleBase() string { return strings.TrimRight(envOr("FIN_CONSOLE_URL", defaultConsole), "/") }

// operatorToken is the token fin's actions send: FIN_OPERATOR_TOKEN (one from the identity
// provider), or one minted for five minutes with the local secret, as `fin token -scopes
// bank:operator` mints it.
func operatorToken() (string, error) {
	if tok := strings.TrimSpace(os.Getenv("FIN_OPERATOR_TOKEN")); tok != "" {
		return tok, nil
	}
	tok, err := mintToken([]string{"-scopes", api.ScopeOperator, "-ttl", "5m"})
	if err != nil {
		return "", fmt.Errorf("an operator token (set FIN_OPERATOR_TOKEN to one with the scope %s): %w", api.ScopeOperator, err)
	}
	return tok, nil
}

// act asks the running stack for an operator's action (POST /api/actions/<name>, the endpoint the
// console's buttons call) and prints what came of it, as the audit log records it.
func act(ctx context.Context, name string, args any) error {
	tok, err := operatorToken()
	if err != nil {
		return err
	}
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	url := consoleBase() + "/api/actions/" + name
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no running stack at %s (start it with `make run`): %w", consoleBase(), err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var rec console.Record
	if json.Unmarshal(out, &rec) != nil || rec.ID == 0 {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(out)))
	}
	fmt.Printf("%s (action %d by %s at %s)\n", rec.Outcome, rec.ID, rec.Subject, rec.At.Local().Format(time.TimeOnly))
	if !rec.OK {
		return fmt.Errorf("%s failed: %s", name, rec.Outcome)
	}
	return nil
}
