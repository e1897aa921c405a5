package samtemplate

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/awsrules"
	"github.com/fin-orchestrator/fin-orchestrator/shared/schedule"
)

// The AWS API parameters each template property the local runtime emulates becomes: the
// constraints come from AWS's published API models (shared/awsrules).
const (
	ruleTopics         = "lambda.CreateEventSourceMapping.Topics"
	ruleBatchSize      = "lambda.CreateEventSourceMapping.BatchSize"
	ruleWindow         = "lambda.CreateEventSourceMapping.MaximumBatchingWindowInSeconds"
	ruleStart          = "lambda.CreateEventSourceMapping.StartingPosition"
	ruleResponseTypes  = "lambda.CreateEventSourceMapping.FunctionResponseTypes"
	ruleMSKGroup       = "lambda.CreateEventSourceMapping.AmazonManagedKafkaEventSourceConfig.ConsumerGroupId"
	ruleSelfGroup      = "lambda.CreateEventSourceMapping.SelfManagedKafkaEventSourceConfig.ConsumerGroupId"
	ruleMaxConcurrency = "lambda.CreateEventSourceMapping.ScalingConfig.MaximumConcurrency"
	ruleReserved       = "lambda.PutFunctionConcurrency.ReservedConcurrentExecutions"
	ruleTimeout        = "lambda.CreateFunction.Timeout"
	ruleEnvironment    = "lambda.CreateFunction.Environment.Variables"
	ruleS3Events       = "s3.PutBucketNotificationConfiguration.NotificationConfiguration.LambdaFunctionConfigurations.Events"
	ruleS3FilterName   = "s3.PutBucketNotificationConfiguration.NotificationConfiguration.LambdaFunctionConfigurations.Filter.Key.FilterRules.Name"
	ruleS3FilterValue  = "s3.PutBucketNotificationConfiguration.NotificationConfiguration.LambdaFunctionConfigurations.Filter.Key.FilterRules.Value"
	ruleSchedule       = "events.PutRule.ScheduleExpression"
	ruleRuleName       = "events.PutRule.Name"
	ruleRuleDesc       = "events.PutRule.Description"
	ruleInput          = "events.PutTargets.Targets.Input"
	ruleRouteAuthType  = "apigatewayv2.CreateRoute.AuthorizationType"
	ruleRouteScopes    = "apigatewayv2.CreateRoute.AuthorizationScopes"
	ruleAuthorizerType = "apigatewayv2.CreateAuthorizer.AuthorizerType"
	ruleIdentitySource = "apigatewayv2.CreateAuthorizer.IdentitySource"
	ruleIssuer         = "apigatewayv2.CreateAuthorizer.JwtConfiguration.Issuer"
	ruleAudience       = "apigatewayv2.CreateAuthorizer.JwtConfiguration.Audience"
	// What the API model leaves out, from cfn-lint's schema extensions.
	ruleStdTimeout  = "cfnlint.AWS::Lambda::Function.Timeout"
	ruleReservedEnv = "cfnlint.AWS::Lambda::Function.Environment.Variables"
)

// checkedRules lists every parameter Check applies; a test holds it equal to awsrules.Names().
var checkedRules = []string{ruleTopics, ruleBatchSize, ruleWindow, ruleStart, ruleResponseTypes, ruleMSKGroup,
	ruleSelfGroup, ruleMaxConcurrency, ruleReserved, ruleTimeout, ruleEnvironment, ruleS3Events, ruleS3FilterName, ruleS3FilterValue, ruleSchedule,
	ruleRuleName, ruleRuleDesc, ruleInput, ruleRouteAuthType, ruleRouteScopes, ruleAuthorizerType,
	ruleIdentitySource, ruleIssuer, ruleAudience, ruleStdTimeout, ruleReservedEnv}

// Check holds every function, event and property the local runtime emulates to the rules AWS
// enforces on deploy: each parameter's constraints in AWS's API models, EventBridge's schedule
// grammar, and the references the SAM transform resolves (a route's authorizer). It checks the
// functions of every condition, as either may be deployed. The error lists each violation with
// the property's path in the template and the rule it breaks.
func (t *Template) Check() error {
	c := &checker{groups: map[bool]map[string]string{false: {}, true: {}}}
	for _, id := range t.Names() {
		f := t.Functions[id]
		c.param(id+".Timeout", ruleTimeout, f.Timeout)
		if !f.CapacityProvider {
			c.param(id+".Timeout", ruleStdTimeout, f.Timeout)
		}
		c.param(id+".Environment.Variables", ruleEnvironment, f.Environment)
		c.param(id+".Environment.Variables", ruleReservedEnv, f.Environment)
		if f.ReservedConcurrency != -1 {
			c.param(id+".ReservedConcurrentExecutions", ruleReserved, f.ReservedConcurrency)
		}
		for _, q := range f.SQS {
			c.sqs(t, f, id+".Events."+q.Name+".", q)
		}
		for _, k := range f.Kafka {
			c.kafka(id+".Events."+k.Name, k)
		}
		for _, s := range f.S3 {
			c.s3(id+".Events."+s.Name+".", s)
		}
		for _, s := range f.Schedules {
			c.schedule(id+".Events."+s.Name+".", s)
		}
		for _, h := range f.HTTP {
			c.route(t, id+".Events."+h.Name+".", h)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.HTTPAPIs)) {
		c.httpAPI(id, t.HTTPAPIs[id])
	}
	for _, id := range slices.Sorted(maps.Keys(t.Queues)) {
		c.queue(t, t.Queues[id])
	}
	return c.err()
}

func (c *checker) kafka(event string, k KafkaEvent) {
	at := event + "."
	c.param(at+"Topics", ruleTopics, k.Topics)
	c.param(at+"BatchSize", ruleBatchSize, k.BatchSize)
	c.param(at+"MaximumBatchingWindowInSeconds", ruleWindow, k.MaxBatchingWindow)
	if k.StartingPosition != "" {
		c.param(at+"StartingPosition", ruleStart, k.StartingPosition)
	}
	c.param(at+"FunctionResponseTypes", ruleResponseTypes, k.ResponseTypes)
	if k.ReportItemFailure && !k.Provisioned {
		// AWS does not refuse this: it ignores the partial batch response, and so acknowledges
		// a partition the function could not land. The local stack honours the response, so it
		// refuses the template rather than be more lenient than AWS.
		c.fail(at+"FunctionResponseTypes", "ReportBatchItemFailures needs ProvisionedPollerConfig: Lambda applies a "+
			"Kafka mapping's partial batch response only in provisioned mode (Lambda developer guide, error handling controls for Kafka event sources)")
	}
	if k.ConsumerGroupID == "" {
		return // AWS names the group after the mapping's UUID
	}
	c.param(at+"ConsumerGroupId", map[bool]string{false: ruleMSKGroup, true: ruleSelfGroup}[k.SelfManaged], k.ConsumerGroupID)
	if other, dup := c.groups[k.SelfManaged][k.ConsumerGroupID]; dup {
		c.fail(at+"ConsumerGroupId", fmt.Sprintf("%q is also the consumer group of %s: Lambda wants each Kafka "+
			"event source mapping's consumer group id unique (Lambda developer guide, Kafka event sources)", k.ConsumerGroupID, other))
	}
	c.groups[k.SelfManaged][k.ConsumerGroupID] = event
}

// SQS limits the Lambda API model does not carry, from the Lambda and SQS developer guides.
const (
	sqsSmallBatch     = 10    // above it, a batching window of at least 1 s (CreateEventSourceMapping, BatchSize)
	sqsMaxVisibility  = 43200 // 12 hours (SQS developer guide, visibility timeout)
	sqsMinRetention   = 60    // 1 minute to 14 days (SQS API reference, SetQueueAttributes)
	sqsMaxRetention   = 1209600
	sqsMaxReceiveMin  = 1 // RedrivePolicy maxReceiveCount 1-1000 (SQS developer guide, dead-letter queues)
	sqsMaxReceiveMax  = 1000
	sqsFIFOBatchLimit = 10
)

// sqs checks an SQS event source mapping and its queue as Lambda checks them on create.
func (c *checker) sqs(t *Template, f *Function, at string, e SQSEvent) {
	c.param(at+"BatchSize", ruleBatchSize, e.BatchSize)
	c.param(at+"MaximumBatchingWindowInSeconds", ruleWindow, e.MaxBatchingWindow)
	c.param(at+"FunctionResponseTypes", ruleResponseTypes, e.ResponseTypes)
	if e.MaximumConcurrency != 0 {
		c.param(at+"ScalingConfig.MaximumConcurrency", ruleMaxConcurrency, e.MaximumConcurrency)
	}
	if e.BatchSize > sqsSmallBatch && e.MaxBatchingWindow < 1 {
		c.fail(at+"BatchSize", fmt.Sprintf("%d needs MaximumBatchingWindowInSeconds of at least 1: for SQS a batch above %d "+
			"needs a batching window (Lambda API reference, CreateEventSourceMapping, MaximumBatchingWindowInSeconds)", e.BatchSize, sqsSmallBatch))
	}
	q := t.Queues[e.Queue]
	if q == nil {
		c.fail(at+"Queue", fmt.Sprintf("names %q: want !GetAtt <an AWS::SQS::Queue of the template>.Arn", e.Queue))
		return
	}
	if q.FIFO && e.BatchSize > sqsFIFOBatchLimit {
		c.fail(at+"BatchSize", fmt.Sprintf("%d: a FIFO queue's batch is at most %d (Lambda API reference, CreateEventSourceMapping, BatchSize)", e.BatchSize, sqsFIFOBatchLimit))
	}
	if q.VisibilityTimeout < f.Timeout {
		c.fail(at+"Queue", fmt.Sprintf("queue %s has VisibilityTimeout %d s, less than the function's Timeout %d s: Lambda refuses "+
			"the mapping (Lambda developer guide, SQS event source: the function's timeout must not exceed the queue's visibility timeout)",
			q.LogicalID, q.VisibilityTimeout, f.Timeout))
	}
}

// queue checks an SQS queue's attributes against SQS's limits.
func (c *checker) queue(t *Template, q *Queue) {
	at := q.LogicalID + "."
	if q.VisibilityTimeout < 0 || q.VisibilityTimeout > sqsMaxVisibility {
		c.fail(at+"VisibilityTimeout", fmt.Sprintf("%d: SQS takes 0 to %d seconds (SQS developer guide, visibility timeout)", q.VisibilityTimeout, sqsMaxVisibility))
	}
	if q.MessageRetentionPeriod < sqsMinRetention || q.MessageRetentionPeriod > sqsMaxRetention {
		c.fail(at+"MessageRetentionPeriod", fmt.Sprintf("%d: SQS takes %d to %d seconds (SQS API reference, SetQueueAttributes)",
			q.MessageRetentionPeriod, sqsMinRetention, sqsMaxRetention))
	}
	if q.DeadLetterQueue == "" {
		return
	}
	dlq := t.Queues[q.DeadLetterQueue]
	switch {
	case dlq == nil:
		c.fail(at+"RedrivePolicy.deadLetterTargetArn", fmt.Sprintf("names %q, which is not an AWS::SQS::Queue of the template", q.DeadLetterQueue))
	case dlq.FIFO != q.FIFO:
		c.fail(at+"RedrivePolicy.deadLetterTargetArn", "a FIFO queue's dead-letter queue is FIFO, a standard queue's standard (SQS developer guide, dead-letter queues)")
	}
	if q.MaxReceiveCount < sqsMaxReceiveMin || q.MaxReceiveCount > sqsMaxReceiveMax {
		c.fail(at+"RedrivePolicy.maxReceiveCount", fmt.Sprintf("%d: SQS takes %d to %d (SQS developer guide, dead-letter queues)",
			q.MaxReceiveCount, sqsMaxReceiveMin, sqsMaxReceiveMax))
	}
}

func (c *checker) s3(at string, s S3Event) {
	c.param(at+"Events", ruleS3Events, s.Events)
	for i, r := range s.Rules {
		c.param(fmt.Sprintf("%sFilter.S3Key.Rules[%d].Name", at, i), ruleS3FilterName, r.Name)
		c.param(fmt.Sprintf("%sFilter.S3Key.Rules[%d].Value", at, i), ruleS3FilterValue, r.Value)
	}
}

func (c *checker) schedule(at string, s ScheduleEvent) {
	c.param(at+"Schedule", ruleSchedule, s.Expression)
	if _, err := schedule.Parse(s.Expression); err != nil {
		c.fail(at+"Schedule", err.Error()+" (EventBridge user guide, schedule expressions)")
	}
	if s.RuleName != "" {
		c.param(at+"Name", ruleRuleName, s.RuleName)
	}
	c.param(at+"Description", ruleRuleDesc, s.Description)
	if s.Input != "" {
		c.param(at+"Input", ruleInput, s.Input)
		if !json.Valid([]byte(s.Input)) {
			c.fail(at+"Input", "is not JSON; EventBridge passes a target's Input as JSON text (EventBridge API reference, Target)")
		}
	}
}

func (c *checker) httpAPI(id string, api *HTTPAPI) {
	for _, name := range slices.Sorted(maps.Keys(api.Authorizers)) {
		a, at := api.Authorizers[name], id+".Auth.Authorizers."+name+"."
		c.param(at+"Type", ruleAuthorizerType, map[bool]string{true: "JWT", false: "REQUEST"}[a.JWT])
		if a.IdentitySource != "" {
			c.param(at+"IdentitySource", ruleIdentitySource, []string{a.IdentitySource})
		}
		if a.JWT {
			c.param(at+"JwtConfiguration.issuer", ruleIssuer, a.Issuer)
			c.param(at+"JwtConfiguration.audience", ruleAudience, a.Audience)
		}
	}
	if d := api.DefaultAuthorizer; d != "" && d != "NONE" && !hasKey(api.Authorizers, d) {
		c.fail(id+".Auth.DefaultAuthorizer", fmt.Sprintf("names %q, which %s.Auth.Authorizers does not declare "+
			"(the SAM transform refuses it)", d, id))
	}
}

// httpMethods are the methods a route key may name (API Gateway developer guide, HTTP API routes).
var httpMethods = map[string]bool{"ANY": true, http.MethodGet: true, http.MethodPut: true, http.MethodPost: true,
	http.MethodDelete: true, http.MethodPatch: true, http.MethodHead: true, http.MethodOptions: true}

func (c *checker) route(t *Template, at string, h HTTPEvent) {
	if !httpMethods[h.Method] {
		c.fail(at+"Method", fmt.Sprintf("%q is not ANY or an HTTP method API Gateway routes (API Gateway developer guide, routes)", h.Method))
	}
	if !strings.HasPrefix(h.Path, "/") || strings.Contains(strings.TrimSuffix(h.Path, "{proxy+}"), "+}") {
		c.fail(at+"Path", fmt.Sprintf("%q: a route path starts with / and only its last segment may be greedy {name+} "+
			"(API Gateway developer guide, routes)", h.Path))
	}
	if h.REST {
		return // a REST API's routes and authorizers are not HttpApi's; fin up serves HttpApi only
	}
	api := t.HTTPAPIs[h.APIID]
	if h.APIID != "" && api == nil {
		c.fail(at+"ApiId", fmt.Sprintf("names %q, which is not an AWS::Serverless::HttpApi of the template", h.APIID))
		return
	}
	name := h.Authorizer
	if name == "" && api != nil {
		name = api.DefaultAuthorizer
	}
	authType := "NONE"
	switch {
	case name == "" || name == "NONE":
	case api == nil || !hasKey(api.Authorizers, name):
		apiName := h.APIID
		if apiName == "" {
			apiName = "the implicit HTTP API"
		}
		c.fail(at+"Auth.Authorizer", fmt.Sprintf("names %q, which %s does not declare in Auth.Authorizers "+
			"(the SAM transform refuses it)", name, apiName))
		return
	case api.Authorizers[name].JWT:
		authType = "JWT"
	default:
		authType = "CUSTOM"
	}
	c.param(at+"Auth (authorization type)", ruleRouteAuthType, authType)
	c.param(at+"Auth.AuthorizationScopes", ruleRouteScopes, h.Scopes)
}

// RefusedError lists what AWS would refuse in a template.
type RefusedError struct {
	Violations []error
	msg        string
}

func (e *RefusedError) Error() string   { return e.msg }
func (e *RefusedError) Unwrap() []error { return e.Violations }

type checker struct {
	errs   []error
	groups map[bool]map[string]string // self-managed? -> consumer group id -> the event that has it
}

// param checks one property against its AWS API parameter's constraints.
func (c *checker) param(at, rule string, v any) {
	if v == nil {
		return
	}
	if l, ok := v.([]string); ok && l == nil {
		return // a property the template leaves out
	}
	if err := awsrules.Check(rule, v); err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s: %w", at, err))
	}
}

func (c *checker) fail(at, msg string) { c.errs = append(c.errs, fmt.Errorf("%s: %s", at, msg)) }

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	msgs := make([]string, len(c.errs))
	for i, e := range c.errs {
		msgs[i] = e.Error()
	}
	return &RefusedError{Violations: c.errs, msg: "AWS would refuse this template:\n  " + strings.Join(msgs, "\n  ")}
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
