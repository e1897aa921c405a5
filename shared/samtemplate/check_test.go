package samtemplate

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/awsrules"
)

// Every constraint extracted from AWS's models is applied to a template property, and only those.
func TestCheckAppliesEveryExtractedConstraint(t *testing.T) {
	got := slices.Clone(checkedRules)
	slices.Sort(got)
	if want := awsrules.Names(); !slices.Equal(got, want) {
		t.Errorf("Check applies %v\nconstraints.json holds %v", got, want)
	}
}

func TestRepositoryTemplatePassesCheck(t *testing.T) {
	tpl, err := Load("../../template.yaml", map[string]string{"Stage": "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tpl.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckRefusesWhatAWSRefuses takes each property of the repository's template past the rule
// AWS holds it to, one at a time, and wants Check to name the property and the rule.
func TestCheckRefusesWhatAWSRefuses(t *testing.T) {
	body, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	landing := func(f func(k *KafkaEvent)) func(*Template) {
		return func(tpl *Template) { f(&tpl.Functions["CdcLandingFunction"].Kafka[1]) }
	}
	selfManaged := func(f func(k *KafkaEvent)) func(*Template) {
		return func(tpl *Template) { f(&tpl.Functions["CdcLandingSelfManagedFunction"].Kafka[0]) }
	}
	loader := func(f func(s *S3Event)) func(*Template) {
		return func(tpl *Template) { f(&tpl.Functions["WarehouseLoaderFunction"].S3[0]) }
	}
	dbt := func(f func(s *ScheduleEvent)) func(*Template) {
		return func(tpl *Template) { f(&tpl.Functions["DbtRunnerFunction"].Schedules[0]) }
	}
	sqs := func(f func(e *SQSEvent)) func(*Template) {
		return func(tpl *Template) { f(&tpl.Functions["DbtRunnerFunction"].SQS[0]) }
	}
	queue := func(f func(q *Queue)) func(*Template) {
		return func(tpl *Template) { f(tpl.Queues["BuildRequests"]) }
	}
	api := func(f func(h *HTTPEvent)) func(*Template) {
		return func(tpl *Template) { f(&tpl.Functions["ApiFunction"].HTTP[len(tpl.Functions["ApiFunction"].HTTP)-1]) }
	}
	for _, c := range []struct {
		name   string
		break_ func(*Template)
		want   []string // in the message: the property's path and the rule
	}{
		{"SQS batch without a window", sqs(func(e *SQSEvent) { e.MaxBatchingWindow = 0 }),
			[]string{"DbtRunnerFunction.Events.LoadsCommitted.BatchSize", "needs MaximumBatchingWindowInSeconds of at least 1"}},
		{"SQS batch size", sqs(func(e *SQSEvent) { e.BatchSize = 10_001 }),
			[]string{"LoadsCommitted.BatchSize", "10001 is more than the maximum 10000"}},
		{"SQS maximum concurrency", sqs(func(e *SQSEvent) { e.MaximumConcurrency = 1 }),
			[]string{"LoadsCommitted.ScalingConfig.MaximumConcurrency", "1 is less than the minimum 2"}},
		{"SQS queue unknown", sqs(func(e *SQSEvent) { e.Queue = "Nowhere" }),
			[]string{"LoadsCommitted.Queue", `"Nowhere"`}},
		{"visibility timeout below the function's timeout", queue(func(q *Queue) { q.VisibilityTimeout = 899 }),
			[]string{"LoadsCommitted.Queue", "VisibilityTimeout 899 s, less than the function's Timeout 900 s"}},
		{"visibility timeout over 12 hours", queue(func(q *Queue) { q.VisibilityTimeout = 43201 }),
			[]string{"BuildRequests.VisibilityTimeout", "0 to 43200"}},
		{"retention", queue(func(q *Queue) { q.MessageRetentionPeriod = 59 }),
			[]string{"BuildRequests.MessageRetentionPeriod", "60 to 1209600"}},
		{"max receive count", queue(func(q *Queue) { q.MaxReceiveCount = 0 }),
			[]string{"BuildRequests.RedrivePolicy.maxReceiveCount", "1 to 1000"}},
		{"FIFO queue with a standard dead-letter queue", func(tpl *Template) {
			tpl.Queues["BuildRequests"].FIFO = true
			tpl.Functions["DbtRunnerFunction"].SQS[0].BatchSize = 10
		},
			[]string{"BuildRequests.RedrivePolicy.deadLetterTargetArn", "FIFO"}},
		{"FIFO batch", func(tpl *Template) {
			tpl.Queues["BuildRequests"].FIFO, tpl.Queues["FailedInvocations"].FIFO = true, true
			tpl.Functions["DbtRunnerFunction"].SQS[0].BatchSize = 11
		},
			[]string{"LoadsCommitted.BatchSize", "a FIFO queue's batch is at most 10"}},
		{"reserved concurrency", func(tpl *Template) { tpl.Functions["DbtRunnerFunction"].ReservedConcurrency = -2 },
			[]string{"DbtRunnerFunction.ReservedConcurrentExecutions", "less than the minimum 0"}},
		{"three topics", landing(func(k *KafkaEvent) { k.Topics = append(k.Topics, "fin.public.customers", "fin.public.transactions") }),
			[]string{"CdcLandingFunction.Events.MskAccounts.Topics", "3 items", "more than the maximum 1", "lambda.CreateEventSourceMapping.Topics"}},
		{"no topic", landing(func(k *KafkaEvent) { k.Topics = []string{} }),
			[]string{"MskAccounts.Topics", "fewer than the minimum 1"}},
		{"topic name", landing(func(k *KafkaEvent) { k.Topics = []string{"fin public accounts"} }),
			[]string{"MskAccounts.Topics", "does not match the pattern"}},
		{"batch size", landing(func(k *KafkaEvent) { k.BatchSize = 10_001 }),
			[]string{"MskAccounts.BatchSize", "10001 is more than the maximum 10000"}},
		{"batch size zero", landing(func(k *KafkaEvent) { k.BatchSize = 0 }),
			[]string{"MskAccounts.BatchSize", "0 is less than the minimum 1"}},
		{"batching window", landing(func(k *KafkaEvent) { k.MaxBatchingWindow = 301 }),
			[]string{"MskAccounts.MaximumBatchingWindowInSeconds", "301 is more than the maximum 300"}},
		{"starting position", landing(func(k *KafkaEvent) { k.StartingPosition = "EARLIEST" }),
			[]string{"MskAccounts.StartingPosition", `"EARLIEST" is not one of TRIM_HORIZON, LATEST, AT_TIMESTAMP`}},
		{"partial batch response outside provisioned mode", landing(func(k *KafkaEvent) { k.Provisioned = false }),
			[]string{"CdcLandingFunction.Events.MskAccounts.FunctionResponseTypes", "needs ProvisionedPollerConfig"}},
		{"response types", landing(func(k *KafkaEvent) { k.ResponseTypes = []string{"ReportBatchItemFailures", "ReportBatchItemFailures"} }),
			[]string{"MskAccounts.FunctionResponseTypes", "more than the maximum 1"}},
		{"MSK group id", landing(func(k *KafkaEvent) { k.ConsumerGroupID = "fin#landing" }),
			[]string{"MskAccounts.ConsumerGroupId", "AmazonManagedKafkaEventSourceConfig.ConsumerGroupId", "does not match the pattern"}},
		{"MSK group id length", landing(func(k *KafkaEvent) { k.ConsumerGroupID = strings.Repeat("g", 201) }),
			[]string{"MskAccounts.ConsumerGroupId", "longer than the maximum length 200"}},
		{"self-managed group id", selfManaged(func(k *KafkaEvent) { k.ConsumerGroupID = "fin#landing" }),
			[]string{"CdcLandingSelfManagedFunction.Events.KafkaCustomers.ConsumerGroupId", "SelfManagedKafkaEventSourceConfig.ConsumerGroupId"}},
		{"shared group id", landing(func(k *KafkaEvent) { k.ConsumerGroupID = "fin-cdc-landing-dev-customers" }),
			[]string{"MskAccounts.ConsumerGroupId", "also the consumer group of CdcLandingFunction.Events.MskCustomers", "unique"}},
		{"timeout", func(tpl *Template) { tpl.Functions["WarehouseLoaderFunction"].Timeout = 901 },
			[]string{"WarehouseLoaderFunction.Timeout", "901 is more than the maximum 900", "cfnlint"}},
		{"timeout past the model", func(tpl *Template) {
			tpl.Functions["WarehouseLoaderFunction"].Timeout = 5401
			tpl.Functions["WarehouseLoaderFunction"].CapacityProvider = true
		},
			[]string{"WarehouseLoaderFunction.Timeout", "5401 is more than the maximum 5400", "lambda.CreateFunction.Timeout"}},
		{"timeout zero", func(tpl *Template) { tpl.Functions["WarehouseLoaderFunction"].Timeout = 0 },
			[]string{"WarehouseLoaderFunction.Timeout", "0 is less than the minimum 1"}},
		{"environment name", func(tpl *Template) { tpl.Functions["WarehouseLoaderFunction"].Environment["1LOADER"] = "x" },
			[]string{"WarehouseLoaderFunction.Environment.Variables", `key "1LOADER" does not match the pattern`}},
		{"reserved environment name", func(tpl *Template) { tpl.Functions["WarehouseLoaderFunction"].Environment["AWS_REGION"] = "x" },
			[]string{"WarehouseLoaderFunction.Environment.Variables", `"AWS_REGION" is reserved by AWS`}},
		{"S3 event name", loader(func(s *S3Event) { s.Events = []string{"s3:ObjectMade:*"} }),
			[]string{"WarehouseLoaderFunction.Events.BronzeObject.Events", `"s3:ObjectMade:*" is not one of`}},
		{"S3 filter rule name", loader(func(s *S3Event) { s.Rules[0].Name = "Prefix" }),
			[]string{"BronzeObject.Filter.S3Key.Rules[0].Name", `"Prefix" is not one of prefix, suffix`}},
		{"schedule fields", dbt(func(s *ScheduleEvent) { s.Expression = "cron(0 12 * * *)" }),
			[]string{"DbtRunnerFunction.Events.Schedule.Schedule", "want 6 fields", "EventBridge"}},
		{"schedule days", dbt(func(s *ScheduleEvent) { s.Expression = "cron(0 12 1 * MON *)" }),
			[]string{"DbtRunnerFunction.Events.Schedule.Schedule", "one of day-of-month and day-of-week must be ?"}},
		{"schedule both any", dbt(func(s *ScheduleEvent) { s.Expression = "cron(0 12 ? * ? *)" }),
			[]string{"DbtRunnerFunction.Events.Schedule.Schedule", "one of day-of-month and day-of-week must be ?"}},
		{"rate in seconds", dbt(func(s *ScheduleEvent) { s.Expression = "rate(30 seconds)" }),
			[]string{"DbtRunnerFunction.Events.Schedule.Schedule", "unit must be minute(s), hour(s) or day(s)"}},
		{"rate of zero", dbt(func(s *ScheduleEvent) { s.Expression = "rate(0 minutes)" }),
			[]string{"DbtRunnerFunction.Events.Schedule.Schedule", "positive whole number"}},
		{"schedule length", dbt(func(s *ScheduleEvent) { s.Expression = "rate(1 minute)" + strings.Repeat(" ", 250) }),
			[]string{"DbtRunnerFunction.Events.Schedule.Schedule", "longer than the maximum length 256", "events.PutRule.ScheduleExpression"}},
		{"rule name", dbt(func(s *ScheduleEvent) { s.RuleName = "fin dbt build" }),
			[]string{"DbtRunnerFunction.Events.Schedule.Name", "does not match the pattern", "events.PutRule.Name"}},
		{"rule description", dbt(func(s *ScheduleEvent) { s.Description = strings.Repeat("d", 513) }),
			[]string{"DbtRunnerFunction.Events.Schedule.Description", "longer than the maximum length 512"}},
		{"input length", dbt(func(s *ScheduleEvent) { s.Input = `{"detail":"` + strings.Repeat("x", 8192) + `"}` }),
			[]string{"DbtRunnerFunction.Events.Schedule.Input", "longer than the maximum length 8192"}},
		{"input not JSON", dbt(func(s *ScheduleEvent) { s.Input = `{detail: 1}` }),
			[]string{"DbtRunnerFunction.Events.Schedule.Input", "is not JSON"}},
		{"undeclared authorizer", api(func(h *HTTPEvent) { h.Authorizer = "Cognito" }),
			[]string{"ApiFunction.Events.", ".Auth.Authorizer", `names "Cognito", which HttpApi does not declare`}},
		{"undeclared default authorizer", func(tpl *Template) {
			tpl.HTTPAPIs["HttpApi"].DefaultAuthorizer = "Cognito"
			for i := range tpl.Functions["ApiFunction"].HTTP {
				tpl.Functions["ApiFunction"].HTTP[i].Authorizer = "NONE" // else each route says it too
			}
		}, []string{"HttpApi.Auth.DefaultAuthorizer", `names "Cognito"`}},
		{"undeclared API", api(func(h *HTTPEvent) { h.APIID = "OtherApi" }),
			[]string{".ApiId", `"OtherApi", which is not an AWS::Serverless::HttpApi`}},
		{"route method", api(func(h *HTTPEvent) { h.Method = "FETCH" }),
			[]string{".Method", `"FETCH" is not ANY or an HTTP method`}},
		{"route path", api(func(h *HTTPEvent) { h.Path = "accounts" }),
			[]string{".Path", "starts with /"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tpl, err := Parse(body, map[string]string{"Stage": "dev"})
			if err != nil {
				t.Fatal(err)
			}
			c.break_(tpl)
			err = tpl.Check()
			var refused *RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("accepted (or not refused: %v)", err)
			}
			if len(refused.Violations) != 1 {
				t.Errorf("%d violations, want the one made: %v", len(refused.Violations), err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// A variable of the Globals reaches every function, and AWS refuses a reserved name there too.
func TestCheckSeesTheGlobalsVariables(t *testing.T) {
	tpl, err := Parse([]byte(`
Globals:
  Function:
    Environment:
      Variables: {AWS_REGION: eu-west-1}
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables: {OWN: x}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tpl.Check(); err == nil || !strings.Contains(err.Error(), `F.Environment.Variables: key "AWS_REGION" is reserved by AWS`) {
		t.Errorf("a reserved name in the Globals: %v", err)
	}
}
