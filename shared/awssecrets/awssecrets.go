// Package awssecrets reads AWS Secrets Manager secrets with the credentials a Lambda function
// gets in its environment, through one signed HTTPS call: the full SDK would add megabytes to
// every bootstrap for this one request.
package awssecrets

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

// Client calls Secrets Manager.
type Client struct {
	HTTP     *http.Client // nil: a client with a 10 s timeout
	Region   string
	Endpoint string // "": the regional endpoint
	Creds    *aws.Credentials
}

// FromEnv is the client a function's environment describes: the region (AWS_REGION, else
// AWS_DEFAULT_REGION), the role's credentials Lambda sets, and AWS_ENDPOINT_URL_SECRETS_MANAGER.
func FromEnv(env *settings.Env) Client {
	return Client{
		Region:   cmp.Or(env.Get("AWS_REGION"), env.Get("AWS_DEFAULT_REGION")),
		Endpoint: env.Get("AWS_ENDPOINT_URL_SECRETS_MANAGER"),
		Creds: &aws.Credentials{AccessKeyID: env.Get("AWS_ACCESS_KEY_ID"), SecretAccessKey: env.Get("AWS_SECRET_ACCESS_KEY"),
			SessionToken: env.Get("AWS_SESSION_TOKEN")},
	}
}

// String returns the SecretString of the secret named by id (an ARN or a name).
func (c Client) String(ctx context.Context, id string) (string, error) {
	region := c.Region
	if region == "" {
		return "", errors.New("secrets manager: no region (set AWS_REGION)")
	}
	endpoint := cmp.Or(c.Endpoint, "https://secretsmanager."+region+".amazonaws.com")
	var creds aws.Credentials
	if c.Creds != nil {
		creds = *c.Creds
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return "", errors.New("secrets manager: no credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	}
	body, _ := json.Marshal(map[string]string{"SecretId": id})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("secrets manager: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", region, time.Now()); err != nil {
		return "", fmt.Errorf("secrets manager: sign request: %w", err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("secrets manager: get %s: %w", id, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("secrets manager: get %s: %w", id, err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		json.Unmarshal(out, &e)
		return "", fmt.Errorf("secrets manager: get %s: %s %s %s", id, res.Status, e.Type, e.Message)
	}
	var v struct {
		SecretString *string `json:"SecretString"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.SecretString == nil {
		return "", fmt.Errorf("secrets manager: get %s: the answer holds no SecretString", id)
	}
	return *v.SecretString, nil
}
