package samtemplate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The repository's own template.yaml, read as the local runtime reads it.
func TestRepositoryTemplate(t *testing.T) {
	tpl, err := Load("../../template.yaml", map[string]string{"Stage": "local", "MskClusterArn": "arn:aws:kafka:x:1:cluster/c/u",
		"JwtIssuer": "https://issuer.example", "JwtAudience": "client-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ApiFunction", "CdcLandingFunction", "CdcLandingSelfManagedFunction", "DbtRunnerFunction", "WarehouseLoaderFunction"}
	if got := tpl.Names(); !slices.Equal(got, want) {
		t.Fatalf("functions %v, want %v", got, want)
	}
	if env := tpl.Functions["WarehouseLoaderFunction"].Environment; env["STAGE"] != "local" || env["LOADER_TIMEOUT"] != "4m" {
		t.Errorf("loader environment %v, want the Globals' STAGE merged into its own", env)
	}
	if tpl.Functions["WarehouseLoaderFunction"].Timeout != 300 {
		t.Errorf("loader timeout %d, want 300", tpl.Functions["WarehouseLoaderFunction"].Timeout)
	}
	api := tpl.Functions["ApiFunction"]
	if n := len(api.HTTP); n != 8 || !api.HTTP[0].NoAuth || api.HTTP[0].Path != "/healthz" || api.HTTP[n-1].Path != "/{proxy+}" ||
		api.HTTP[n-1].Method != "ANY" || api.HTTP[n-1].NoAuth || api.HTTP[n-1].Authorizer != "" || api.HTTP[n-1].APIID != "HttpApi" {
		t.Errorf("api events %+v", api.HTTP)
	}
	jwtWant := JWTAuthorizer{JWT: true, IdentitySource: "$request.header.Authorization", Issuer: "https://issuer.example", Audience: []string{"client-1"}}
	if h := tpl.HTTPAPIs["HttpApi"]; h == nil || h.DefaultAuthorizer != "Jwt" || fmt.Sprint(h.Authorizers) != fmt.Sprint(map[string]JWTAuthorizer{"Jwt": jwtWant}) {
		t.Errorf("HttpApi %+v, want the default authorizer Jwt: %+v", h, jwtWant)
	}
	// One mapping per topic in both variants, each with its own consumer group, the same batching.
	for _, id := range []string{"CdcLandingFunction", "CdcLandingSelfManagedFunction"} {
		land := tpl.Functions[id]
		if len(land.Kafka) != 4 {
			t.Fatalf("%s: %d Kafka events, want one per topic: %+v", id, len(land.Kafka), land.Kafka)
		}
		for i, topic := range []string{"public.customers", "public.accounts", "public.transactions", "transaction_metadata"} {
			k := land.Kafka[i]
			group := "fin-cdc-landing-local-" + strings.ReplaceAll(strings.TrimPrefix(topic, "public."), "_", "-")
			if k.BatchSize != 10000 || k.MaxBatchingWindow != 0 || k.StartingPosition != "TRIM_HORIZON" || !k.ReportItemFailure ||
				!slices.Equal(k.Topics, []string{"fin." + topic}) || k.ConsumerGroupID != group ||
				k.SelfManaged != (id == "CdcLandingSelfManagedFunction") {
				t.Errorf("%s event %d: %+v", id, i, k)
			}
		}
	}
	if c := tpl.Functions["CdcLandingFunction"].Condition; c != "UseMsk" {
		t.Errorf("MSK landing condition %q", c)
	}
	s3 := tpl.Functions["WarehouseLoaderFunction"].S3
	if len(s3) != 1 || s3[0].Prefix != "bronze/" || s3[0].Suffix != ".parquet" || !slices.Equal(s3[0].Events, []string{"s3:ObjectCreated:*"}) {
		t.Errorf("S3 event %+v", s3)
	}
	dbt := tpl.Functions["DbtRunnerFunction"]
	if len(dbt.Schedules) != 1 || dbt.Schedules[0].Expression != "rate(15 minutes)" {
		t.Errorf("schedule %+v", dbt.Schedules)
	}
	// Loads that committed reach dbt through SQS, batched, one build at a time.
	wantSQS := SQSEvent{Name: "LoadsCommitted", Queue: "BuildRequests", BatchSize: 10000, MaxBatchingWindow: 1, MaximumConcurrency: 2, Enabled: true}
	if len(dbt.SQS) != 1 || fmt.Sprint(dbt.SQS[0]) != fmt.Sprint(wantSQS) || dbt.ReservedConcurrency != 1 {
		t.Errorf("dbt SQS events %+v, reserved concurrency %d; want %+v and 1", dbt.SQS, dbt.ReservedConcurrency, wantSQS)
	}
	q := tpl.Queues["BuildRequests"]
	if q == nil || q.Name != "fin-dbt-build-requests-local" || q.VisibilityTimeout != 5400 || q.MessageRetentionPeriod != 345600 ||
		q.DeadLetterQueue != "FailedInvocations" || q.MaxReceiveCount != 5 {
		t.Errorf("queue %+v", q)
	}
	if url := tpl.Functions["WarehouseLoaderFunction"].Environment["BUILD_QUEUE_URL"]; url != q.URL || url != QueueURL("fin-dbt-build-requests-local") {
		t.Errorf("loader BUILD_QUEUE_URL %q, want the queue's URL %q", url, q.URL)
	}
	off, err := Load("../../template.yaml", map[string]string{"Stage": "local", "DbtBuildOnLoad": "false"})
	if err != nil {
		t.Fatal(err)
	}
	if off.Functions["DbtRunnerFunction"].SQS[0].Enabled {
		t.Error("DbtBuildOnLoad=false left the build requests' event source enabled")
	}
	if tpl.Functions["ApiFunction"].ReservedConcurrency != -1 {
		t.Errorf("api reserved concurrency %d, want -1 (unset)", tpl.Functions["ApiFunction"].ReservedConcurrency)
	}
}

func TestParseResolvesAndDefaults(t *testing.T) {
	body := []byte(`
Parameters:
  Prefix: {Type: String, Default: pre}
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          A: !Sub "${Prefix}-${AWS::AccountId}-${Other.Arn}"
          B: {Ref: Prefix}
      Events:
        K:
          Type: MSK
          Properties:
            Topics: [!Sub "${Prefix}.t"]
        S:
          Type: Schedule
          Properties:
            Schedule: cron(0 12 * * ? *)
        Q:
          Type: SQS
          Properties:
            Queue: {"Fn::GetAtt": [Q1, Arn]}
  Q1:
    Type: AWS::SQS::Queue
`)
	tpl, err := Parse(body, map[string]string{"Prefix": "over"})
	if err != nil {
		t.Fatal(err)
	}
	f := tpl.Functions["F"]
	if f.Environment["A"] != "over-000000000000-${Other.Arn}" || f.Environment["B"] != "over" {
		t.Errorf("environment %v", f.Environment)
	}
	if k := f.Kafka[0]; k.BatchSize != 100 || k.MaxBatchingWindow != 0 || k.Topics[0] != "over.t" {
		t.Errorf("AWS defaults not applied: %+v", k)
	}
	if q := tpl.Queues["Q1"]; q == nil || q.VisibilityTimeout != 30 || q.MessageRetentionPeriod != 345600 || q.Name != "Q1" {
		t.Errorf("SQS defaults not applied: %+v", q)
	}
	if e := f.SQS[0]; e.Queue != "Q1" || e.BatchSize != 10 || e.MaxBatchingWindow != 0 || e.MaximumConcurrency != 0 {
		t.Errorf("SQS event defaults not applied: %+v", e)
	}
	if f.Schedules[0].Expression != "cron(0 12 * * ? *)" {
		t.Errorf("schedule %+v", f.Schedules)
	}
	if _, err := Parse([]byte("Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Events:\n        K: {Type: MSK, Properties: {Topics: [a], BatchSize: lots}}\n"), nil); err == nil {
		t.Error("a BatchSize that is not a number was accepted")
	}
}
