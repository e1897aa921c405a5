package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

func init() {
	register(command{name: "token", summary: "print a bearer token the local API accepts", run: runToken})
}

func runToken(ctx context.Context, args []string) error {
	fs := newFlags("token", "[-scopes bank:read,bank:write] [-subject name] [-ttl 12h]")
	scopes := fs.String("scopes", api.ScopeRead+","+api.ScopeWrite, "comma-separated scopes")
	subject := fs.String("subject", envOr("USER", "developer"), "the token's subject (idempotency keys are per subject)")
	ttl := fs.Duration("ttl", 12*time.Hour, "how long the token is valid")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := atLeast(fs, "ttl", *ttl, time.Second); err != nil {
		return err
	}
	// The API's own settings, as `fin up` and `fin api` read them from this environment.
	env := settings.ForFunction(settings.API, settings.Process())
	if env.Get("FIN_JWKS_URL") != "" {
		return errors.New("FIN_JWKS_URL is set: tokens come from that identity provider, not from fin token")
	}
	var list []string
	for _, s := range strings.Split(*scopes, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case api.ScopeRead, api.ScopeWrite:
			list = append(list, s)
		default:
			return fmt.Errorf("%w: unknown scope %q (known: %s, %s)", errUsage, s, api.ScopeRead, api.ScopeWrite)
		}
	}
	auth, err := api.AuthConfigFromEnv(env.Get, devSecretPath())
	if err != nil {
		return err
	}
	tok, err := auth.IssueToken(*subject, list, *ttl)
	if err != nil {
		return fmt.Errorf("sign token: %w", err)
	}
	fmt.Println(tok)
	return nil
}
