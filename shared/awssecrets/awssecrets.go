// Package awssecrets reads AWS Secrets Manager secrets with the credentials a Lambda function
// gets in its environment, through one signed HTTPS call: the full SDK would add megabytes to
// every bootstrap for this one request.
package awssecrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Client calls Secrets Manager. The zero value reads everything from the environment.
type Client struct {
	HTTP     *http.Client // nil: a client with a 10 s timeout
	Region   string       // "": AWS_REGION
	Endpoint string       // "": AWS_ENDPOINT_URL_SECRETS_MANAGER, else the regional endpoint
	Creds    *aws.Credentials
}

// String returns the SecretString of the secret named by id (an ARN or a name).
func (c Client) String(ctx context.Context, id string) (string, error) {
	region := firstSet(c.Region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
	if region == "" {
		return "", errors.New("secrets manager: no region (set AWS_REGION)")
	}
	endpoint := firstSet(c.Endpoint, os.Getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER"), "https://secretsmanager."+region+".amazonaws.com")
	creds := aws.Credentials{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN")}
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

// DatabaseURL returns DATABASE_URL when set; otherwise, when DATABASE_SECRET_ARN is set, the
// "url" key of that secret (a secret that is a bare URL works too); otherwise "".
func DatabaseURL(ctx context.Context, c Client) (string, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u, nil
	}
	arn := os.Getenv("DATABASE_SECRET_ARN")
	if arn == "" {
		return "", nil
	}
	s, err := c.String(ctx, arn)
	if err != nil {
		return "", err
	}
	var v struct {
		URL string `json:"url"`
	}
	if json.Unmarshal([]byte(s), &v) == nil && v.URL != "" {
		return v.URL, nil
	}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		return s, nil
	}
	return "", fmt.Errorf("secret %s holds neither a JSON object with a \"url\" key nor a postgres:// URL", arn)
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
