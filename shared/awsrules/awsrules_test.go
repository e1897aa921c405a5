package awsrules

import (
	"errors"
	"strings"
	"testing"
)

// probe is a value to check and whether AWS's model accepts it.
type probe struct {
	value any
	ok    bool
	why   string // what the violation must say
}

// probes pushes each constraint of a shape to its limit and one past it.
func probes(t *testing.T, s *Shape) []probe {
	t.Helper()
	var out []probe
	switch s.Type {
	case "string":
		if len(s.Enum) > 0 {
			for _, e := range s.Enum {
				out = append(out, probe{e, true, ""})
			}
			out = append(out, probe{"NotAnAllowedValue", false, "is not one of"})
			return out
		}
		for _, r := range s.Reserved {
			out = append(out, probe{r, false, "is reserved by AWS"})
		}
		// A value at a length limit is accepted unless the pattern refuses it (a topic name
		// is at least two characters by its pattern, though its minimum length is 1).
		atLimit := func(n int64) {
			if v := strings.Repeat("a", int(n)); s.re == nil || s.re.MatchString(v) {
				out = append(out, probe{v, true, ""})
			}
		}
		if s.Min != nil {
			atLimit(*s.Min)
			if *s.Min > 0 {
				out = append(out, probe{strings.Repeat("a", int(*s.Min)-1), false, "shorter than the minimum"})
			}
		}
		if s.Max != nil {
			atLimit(*s.Max)
			out = append(out, probe{strings.Repeat("a", int(*s.Max)+1), false, "longer than the maximum"})
		}
		if s.re != nil {
			found := false
			for _, c := range []string{"!", "a!", " a", ".a", "a\nb", "a/b!", "\x00"} {
				n := int64(len(c))
				if (s.Min == nil || n >= *s.Min) && (s.Max == nil || n <= *s.Max) && !s.re.MatchString(c) {
					out = append(out, probe{c, false, "does not match the pattern"})
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s: no probe breaks the pattern %s", s.Name, s.Pattern)
			}
		}
	case "integer", "long":
		if s.Min != nil {
			out = append(out, probe{int(*s.Min), true, ""}, probe{int(*s.Min) - 1, false, "less than the minimum"})
		}
		if s.Max != nil {
			out = append(out, probe{int(*s.Max), true, ""}, probe{int(*s.Max) + 1, false, "more than the maximum"})
		}
	case "list":
		item := "aa"
		if len(s.Member.Enum) > 0 {
			item = s.Member.Enum[0]
		}
		items := func(n int64) []string {
			l := make([]string, n)
			for i := range l {
				l[i] = item
			}
			return l
		}
		if s.Min != nil {
			out = append(out, probe{items(*s.Min), true, ""})
			if *s.Min > 0 {
				out = append(out, probe{items(*s.Min - 1), false, "fewer than the minimum"})
			}
		}
		if s.Max != nil {
			out = append(out, probe{items(*s.Max), true, ""}, probe{items(*s.Max + 1), false, "more than the maximum"})
		}
		for _, p := range probes(t, s.Member) {
			if !p.ok {
				out = append(out, probe{[]string{p.value.(string)}, false, p.why})
			}
		}
	case "map":
		for _, p := range probes(t, s.Key) {
			if !p.ok {
				out = append(out, probe{map[string]string{p.value.(string): "v"}, false, p.why})
			}
		}
		for _, p := range probes(t, s.Value) {
			if !p.ok {
				out = append(out, probe{map[string]string{"KEY": p.value.(string)}, false, p.why})
			}
		}
	default:
		t.Errorf("%s: type %s cannot be probed", s.Name, s.Type)
	}
	return out
}

// TestEachConstraintAtAndPastItsLimit takes every constraint of constraints.json to its limit,
// which AWS accepts, and one step past it, which it refuses with a message naming the rule.
func TestEachConstraintAtAndPastItsLimit(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		_, err := load()
		t.Fatalf("no constraints loaded: %v", err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s, err := Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			ps := probes(t, s)
			if len(ps) == 0 {
				t.Skipf("the API model gives %s (%s) no limit", name, s.Name)
			}
			for _, p := range ps {
				err := Check(name, p.value)
				var v *Violation
				switch {
				case p.ok && err != nil:
					t.Errorf("%.60v refused: %v", p.value, err)
				case !p.ok && !errors.As(err, &v):
					t.Errorf("%.60v accepted (or not a violation: %v), want %q", p.value, err, p.why)
				case !p.ok && (!strings.Contains(err.Error(), p.why) || !strings.Contains(err.Error(), name) ||
					!strings.Contains(err.Error(), "from botocore ") && !strings.Contains(err.Error(), "from cfnlint ")):
					t.Errorf("message %q does not say %q, the parameter and the source", err, p.why)
				}
			}
		})
	}
}

// The facts the project relies on, read from the model rather than assumed.
func TestModelFacts(t *testing.T) {
	for _, c := range []struct {
		name  string
		value any
		ok    bool
	}{
		{"lambda.CreateEventSourceMapping.Topics", []string{"fin.public.customers"}, true},
		{"lambda.CreateEventSourceMapping.Topics", []string{"fin.public.customers", "fin.public.accounts"}, false},
		{"lambda.CreateEventSourceMapping.BatchSize", 10_000, true},
		{"lambda.CreateEventSourceMapping.BatchSize", 10_001, false},
		{"lambda.CreateEventSourceMapping.MaximumBatchingWindowInSeconds", 301, false},
		{"lambda.CreateEventSourceMapping.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId", "fin-cdc-landing-dev-customers", true},
		{"lambda.CreateEventSourceMapping.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId", "group#1", false},
		{"lambda.CreateFunction.Environment.Variables", map[string]string{"LAKE_BUCKET": "lake"}, true},
		{"lambda.CreateFunction.Environment.Variables", map[string]string{"1BAD": "x"}, false},
		{"s3.PutBucketNotificationConfiguration.NotificationConfiguration.LambdaFunctionConfigurations.Events", []string{"s3:ObjectCreated:*"}, true},
		{"s3.PutBucketNotificationConfiguration.NotificationConfiguration.LambdaFunctionConfigurations.Events", []string{"s3:ObjectMade:*"}, false},
		{"cfnlint.AWS::Lambda::Function.Timeout", 900, true},
		{"cfnlint.AWS::Lambda::Function.Timeout", 901, false},
		{"cfnlint.AWS::Lambda::Function.Environment.Variables", map[string]string{"AWS_REGION": "x"}, false},
	} {
		if err := Check(c.name, c.value); (err == nil) != c.ok {
			t.Errorf("%s %v: %v, want accepted=%v", c.name, c.value, err, c.ok)
		}
	}
	if err := Check("lambda.NoSuchOperation.X", 1); err == nil || !strings.Contains(err.Error(), "scripts/awsrules.py") {
		t.Errorf("an unknown parameter: %v", err)
	}
}
