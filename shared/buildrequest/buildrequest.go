// Package buildrequest is the contract of the build-request queue (BuildRequests in
// template.yaml): the message a committed load or an operator's "build now" sends, and the
// dbt-runner reads. Sender and reader are stages that never import each other, so the message is
// declared once here.
package buildrequest

import (
	"errors"
	"fmt"
	"regexp"
)

// tableName is a RAW table's name, as the loader's tables are (it becomes part of a selector).
var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Message is the body of a build request on the queue: a committed load's RAW tables
// ({"tables": ["transactions"]}), or an operator's build now: one model and its children
// ({"model": "fct_balances"}) or everything ({"all": true}). Exactly one of them.
type Message struct {
	Tables []string `json:"tables,omitempty"`
	Model  string   `json:"model,omitempty"`
	All    bool     `json:"all,omitempty"`
}

// Check says what is wrong with m, or nil.
func (m Message) Check() error {
	n := 0
	for _, set := range []bool{len(m.Tables) > 0, m.Model != "", m.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("names no table, model or all (or more than one)")
	}
	for _, t := range m.Tables {
		if !tableName.MatchString(t) {
			return fmt.Errorf("table %q is not a table name", t)
		}
	}
	if m.Model != "" && !ModelName.MatchString(m.Model) {
		return fmt.Errorf("model %q is not a model name", m.Model)
	}
	return nil
}

// ModelName is a dbt model's name as a build request may name it (it becomes part of a selector).
var ModelName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
