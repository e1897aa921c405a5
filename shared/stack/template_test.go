package stack

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/lambdalocal"
	"github.com/fin-orchestrator/fin-orchestrator/shared/samtemplate"
)

// TestTemplatesAWSRejectsStopFinUp runs each template of fixtures/aws-rejects through
// LoadTemplate, the first thing `fin up` (and `fin up --check`) does: each must be refused with
// the message its "# fin:" line names. scripts/test.d/20-lint.sh holds the same templates to the
// lint with the SAM transform active ("# lint:"). The repository's template passes.
func TestTemplatesAWSRejectsStopFinUp(t *testing.T) {
	paths, err := filepath.Glob("../../fixtures/aws-rejects/*.yaml")
	if err != nil || len(paths) < 4 {
		t.Fatalf("fixtures/aws-rejects: %d templates (%v), want the rejected ones", len(paths), err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want := header(t, path, "# fin: ")
			_, err := LoadTemplate(path, nil)
			var refused *samtemplate.RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("not refused by AWS's rules: %v", err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refused, but the message does not say %q:\n%v", want, err)
			}
		})
	}
	if _, err := LoadTemplate("../../template.yaml", nil); err != nil {
		t.Errorf("the repository's template: %v", err)
	}
}

func header(t *testing.T, path, prefix string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return rest
		}
	}
	t.Fatalf("%s has no %q line", path, prefix)
	return ""
}

// The local stack runs one consumer group per mapping, each on one topic, as Lambda does, and
// the landed gate waits on exactly those groups.
func TestLandingMappingsOnePerTopic(t *testing.T) {
	tpl, err := LoadTemplate("../../template.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := lambdalocal.KafkaMappings(tpl.Functions[landingFunction], []string{"127.0.0.1:9092"}, "arn:aws:kafka:us-east-1:000000000000:cluster/local/x", nil)
	var got []string
	for _, m := range ms {
		got = append(got, m.Topic+" "+m.GroupID)
		if m.BatchSize != 10000 || m.BatchingWindow != 0 /* AWS's default, 500 ms */ || m.Timeout.Seconds() != 120 || m.StartAtLatest {
			t.Errorf("mapping %s: %+v", m.GroupID, m)
		}
	}
	want := []string{"fin.public.customers fin-cdc-landing-local-customers", "fin.public.accounts fin-cdc-landing-local-accounts",
		"fin.public.transactions fin-cdc-landing-local-transactions",
		"fin.transaction_metadata fin-cdc-landing-local-transaction-metadata"}
	if !slices.Equal(got, want) {
		t.Errorf("mappings %q, want %q", got, want)
	}
	groups := groupsByTopic(ms)
	for _, m := range ms {
		if g := groups[m.Topic]; !slices.Equal(g, []string{m.GroupID}) {
			t.Errorf("gate waits on %v for %s, want [%s]", g, m.Topic, m.GroupID)
		}
	}
}
