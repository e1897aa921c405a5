package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fin-orchestrator/fin-orchestrator/shared/api"
	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

func init() {
	register(command{name: "token", summary: "print a bearer token the local API accepts: a service token, or with -customer one customer's", run: runToken})
}

func runToken(_ context.Context, args []string) error {
	tok, err := mintToken(args)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

// mintToken signs the token `fin token args` prints.
func mintToken(args []string) (string, error) {
	fs := newFlags("token", "[-customer ID] [-scopes bank:read,bank:write | bank:operator] [-subject name] [-ttl 12h]")
	scopes := fs.String("scopes", api.ScopeRead+","+api.ScopeWrite, "comma-separated scopes (a token without -customer gets "+api.ScopeService+" too, unless it asks for "+api.ScopeOperator+" alone: the console's and fin's actions)")
	customer := fs.String("customer", "", "a customer token: acts for this customer id alone (its own customer, accounts and transactions)")
	subject := fs.String("subject", envOr("USER", "developer"), "the token's subject (idempotency keys are per subject)")
	ttl := fs.Duration("ttl", 12*time.Hour, "how long the token is valid")
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if err := atLeast(fs, "ttl", *ttl, time.Second); err != nil {
		return "", err
	}
	var forCustomer uuid.UUID
	if *customer != "" {
		var err error
		if forCustomer, err = uuid.Parse(*customer); err != nil || forCustomer == uuid.Nil {
			fs.Usage()
			return "", fmt.Errorf("%w: -customer %q is not a customer id (a UUID)", errUsage, *customer)
		}
	}
	list, err := tokenScopes(fs, *scopes, forCustomer != uuid.Nil)
	if err != nil {
		return "", err
	}
	// The API's own settings, as `fin up` and `fin api` read them from this environment.
	env := settings.ForFunction(settings.API, settings.Process())
	if env.Get("FIN_JWKS_URL") != "" {
		return "", errors.New("FIN_JWKS_URL is set: tokens come from that identity provider, not from fin token")
	}
	auth, err := api.AuthConfigFromEnv(env.Get, devSecretPath())
	if err != nil {
		return "", err
	}
	var tok string
	if forCustomer != uuid.Nil {
		tok, err = auth.IssueCustomerToken(*subject, forCustomer, list, *ttl)
	} else {
		tok, err = auth.IssueToken(*subject, list, *ttl)
	}
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return tok, nil
}

// tokenScopes reads -scopes: a service token gets bank:service besides, an operator's token
// (bank:operator alone) does not; a customer token may ask for neither (bank:service would not
// widen it, and asking suggests a mistake).
func tokenScopes(fs *flag.FlagSet, scopes string, customer bool) ([]string, error) {
	var list []string
	for _, s := range strings.Split(scopes, ",") {
		switch s = strings.TrimSpace(s); {
		case s == "":
		case s == api.ScopeService && customer:
			fs.Usage()
			return nil, fmt.Errorf("%w: a -customer token acts for that customer alone: leave %s out", errUsage, api.ScopeService)
		case s == api.ScopeOperator && customer:
			fs.Usage()
			return nil, fmt.Errorf("%w: an operator acts on the pipeline, not for a customer: leave -customer out", errUsage)
		case s == api.ScopeRead || s == api.ScopeWrite || s == api.ScopeService || s == api.ScopeOperator:
			list = append(list, s)
		default:
			fs.Usage()
			return nil, fmt.Errorf("%w: unknown scope %q (known: %s, %s, %s, %s)", errUsage, s, api.ScopeRead, api.ScopeWrite, api.ScopeService, api.ScopeOperator)
		}
	}
	// An operator's token asks for nothing else: it gets no customer data with it.
	operatorOnly := slices.Equal(list, []string{api.ScopeOperator})
	if !customer && !operatorOnly && !slices.Contains(list, api.ScopeService) {
		list = append(list, api.ScopeService)
	}
	return list, nil
}
