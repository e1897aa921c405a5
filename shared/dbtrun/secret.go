package dbtrun

import (
	"encoding/json"
	"errors"
	"fmt"
)

// SnowflakeEnv turns the Snowflake secret the functions share ({"account", "user",
// "private_key"}, as in Secrets Manager) into the environment profiles.yml reads, so the key
// reaches dbt's process and never a file or a log.
func SnowflakeEnv(secret string) ([]string, error) {
	var s struct {
		Account    string `json:"account"`
		User       string `json:"user"`
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal([]byte(secret), &s); err != nil {
		return nil, fmt.Errorf("snowflake secret: want JSON with account, user and private_key: %w", err)
	}
	if s.PrivateKey == "" {
		return nil, errors.New("snowflake secret: private_key is empty")
	}
	env := []string{"SNOWFLAKE_PRIVATE_KEY=" + s.PrivateKey}
	if s.Account != "" {
		env = append(env, "SNOWFLAKE_ACCOUNT="+s.Account)
	}
	if s.User != "" {
		env = append(env, "SNOWFLAKE_USER="+s.User)
	}
	return env, nil
}
