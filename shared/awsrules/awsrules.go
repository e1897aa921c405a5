// Package awsrules checks values against the constraints AWS publishes in its API models: the
// length, range, pattern and enumeration of each parameter, as botocore's service-2.json files
// state them, plus the few Lambda function rules the models leave out, from cfn-lint's resource
// schema extensions (names "cfnlint.<resource type>.<property>"). constraints.json holds what
// the local runtime needs, extracted from the botocore and cfn-lint releases requirements-sam.txt
// pins by scripts/awsrules.py (never edited by hand; `make test` fails when it is stale).
package awsrules

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed constraints.json
var constraintsJSON []byte

// Shape is one shape of an API model, with the constraints botocore gives it.
type Shape struct {
	Name    string   `json:"shape"`
	Type    string   `json:"type"`
	Min     *int64   `json:"min"`
	Max     *int64   `json:"max"`
	Pattern string   `json:"pattern"`
	Enum    []string `json:"enum"`
	// Reserved are values AWS keeps for itself (cfn-lint's "not enum").
	Reserved []string `json:"reserved"`
	Member   *Shape   `json:"member"` // of a list
	Key      *Shape   `json:"key"`    // of a map
	Value    *Shape   `json:"value"`  // of a map

	re *regexp.Regexp
}

type file struct {
	Sources     map[string]string `json:"sources"` // package -> version
	Constraints map[string]*Shape `json:"constraints"`
}

var load = sync.OnceValues(func() (*file, error) {
	var f file
	if err := json.Unmarshal(constraintsJSON, &f); err != nil {
		return nil, fmt.Errorf("awsrules: constraints.json: %w", err)
	}
	for name, s := range f.Constraints {
		if err := s.compile(); err != nil {
			return nil, fmt.Errorf("awsrules: %s: %w", name, err)
		}
	}
	return &f, nil
})

// compile prepares the patterns: AWS matches a pattern against the whole value.
func (s *Shape) compile() error {
	if s == nil {
		return nil
	}
	if s.Pattern != "" {
		re, err := regexp.Compile(`^(?:` + s.Pattern + `)$`)
		if err != nil {
			return fmt.Errorf("pattern of %s: %w", s.Name, err)
		}
		s.re = re
	}
	for _, sub := range []*Shape{s.Member, s.Key, s.Value} {
		if err := sub.compile(); err != nil {
			return err
		}
	}
	return nil
}

// Source names where a parameter's constraints come from ("botocore 1.43.127").
func Source(parameter string) string {
	f, err := load()
	if err != nil {
		return "unreadable constraints"
	}
	pkg := "botocore"
	if strings.HasPrefix(parameter, "cfnlint.") {
		pkg = "cfnlint"
	}
	return pkg + " " + f.Sources[pkg]
}

// Names lists the parameters there are constraints for, as "<service>.<Operation>.<member path>".
func Names() []string {
	f, err := load()
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(f.Constraints))
	for n := range f.Constraints {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the shape of a parameter.
func Lookup(name string) (*Shape, error) {
	f, err := load()
	if err != nil {
		return nil, err
	}
	s, ok := f.Constraints[name]
	if !ok {
		return nil, fmt.Errorf("awsrules: no constraints for %s (add it to scripts/awsrules.py)", name)
	}
	return s, nil
}

// Violation is a value AWS would refuse.
type Violation struct {
	Parameter string // "lambda.CreateEventSourceMapping.BatchSize"
	Rule      string // "20000 is more than the maximum 10000"
	Source    string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("%s (%s, from %s)", v.Rule, v.Parameter, v.Source)
}

// Check returns a *Violation when AWS's model for the parameter refuses v: a string, an int, a
// []string (a list) or a map[string]string (a map).
func Check(parameter string, v any) error {
	s, err := Lookup(parameter)
	if err != nil {
		return err
	}
	if rule := s.check(v); rule != "" {
		return &Violation{Parameter: parameter, Rule: rule, Source: Source(parameter)}
	}
	return nil
}

// check returns what is wrong with v, or "".
func (s *Shape) check(v any) string {
	switch s.Type {
	case "string":
		str, ok := v.(string)
		if !ok {
			return fmt.Sprintf("%v is not a string", v)
		}
		n := int64(len([]rune(str)))
		switch {
		case s.Min != nil && n < *s.Min:
			return fmt.Sprintf("%q is shorter than the minimum length %d", str, *s.Min)
		case s.Max != nil && n > *s.Max:
			return fmt.Sprintf("%q is longer than the maximum length %d", abbreviate(str), *s.Max)
		case len(s.Enum) > 0 && !slices.Contains(s.Enum, str):
			return fmt.Sprintf("%q is not one of %s", str, strings.Join(s.Enum, ", "))
		case slices.Contains(s.Reserved, str):
			return fmt.Sprintf("%q is reserved by AWS", str)
		case s.re != nil && !s.re.MatchString(str):
			return fmt.Sprintf("%q does not match the pattern %s", str, s.Pattern)
		}
	case "integer", "long":
		n, ok := v.(int)
		if !ok {
			return fmt.Sprintf("%v is not a whole number", v)
		}
		switch {
		case s.Min != nil && int64(n) < *s.Min:
			return fmt.Sprintf("%d is less than the minimum %d", n, *s.Min)
		case s.Max != nil && int64(n) > *s.Max:
			return fmt.Sprintf("%d is more than the maximum %d", n, *s.Max)
		}
	case "list":
		list, ok := v.([]string)
		if !ok {
			return fmt.Sprintf("%v is not a list", v)
		}
		n := int64(len(list))
		switch {
		case s.Min != nil && n < *s.Min:
			return fmt.Sprintf("%d item(s) %q, fewer than the minimum %d", n, list, *s.Min)
		case s.Max != nil && n > *s.Max:
			return fmt.Sprintf("%d items %q, more than the maximum %d", n, list, *s.Max)
		}
		for i, item := range list {
			if rule := s.Member.check(item); rule != "" {
				return "item " + strconv.Itoa(i) + ": " + rule
			}
		}
	case "map":
		m, ok := v.(map[string]string)
		if !ok {
			return fmt.Sprintf("%v is not a map", v)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if rule := s.Key.check(k); rule != "" {
				return "key " + rule
			}
			if rule := s.Value.check(m[k]); rule != "" {
				return "value of " + k + ": " + rule
			}
		}
	default:
		return fmt.Sprintf("awsrules cannot check a %s (%s)", s.Type, s.Name)
	}
	return ""
}

func abbreviate(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}
