// Package samtemplate reads the functions and event sources of a SAM template.yaml, keeping every
// property of MSK, SelfManagedKafka, SQS, S3, HttpApi and schedule events, and the SQS queues (general CloudFormation
// readers drop some of them), so the local runtime wires each handler as AWS would.
package samtemplate

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is what the local runtime needs of template.yaml.
type Template struct {
	Functions map[string]*Function
	// HTTPAPIs are the AWS::Serverless::HttpApi resources by logical id.
	HTTPAPIs map[string]*HTTPAPI
	// Queues are the AWS::SQS::Queue resources by logical id.
	Queues map[string]*Queue
}

// Queue is an AWS::SQS::Queue, with the defaults SQS applies to what the template leaves out.
type Queue struct {
	LogicalID, Name, URL string
	// VisibilityTimeout is how long a received message stays hidden, in seconds (default 30).
	VisibilityTimeout int
	// MessageRetentionPeriod is how long SQS keeps a message, in seconds (default 4 days).
	MessageRetentionPeriod int
	FIFO                   bool
	// DeadLetterQueue is the logical id RedrivePolicy's deadLetterTargetArn names ("" for none),
	// and MaxReceiveCount how often a message is received before it moves there.
	DeadLetterQueue string
	MaxReceiveCount int
}

// SQSEvent is an SQS event source mapping.
type SQSEvent struct {
	Name string
	// Queue is the logical id of the queue (Queue: !GetAtt <id>.Arn).
	Queue             string
	BatchSize         int
	MaxBatchingWindow int // seconds
	// MaximumConcurrency is ScalingConfig.MaximumConcurrency (0 when unset).
	MaximumConcurrency int
	// Enabled is false for a mapping created disabled (Enabled: false): it polls nothing.
	Enabled           bool
	ReportItemFailure bool
	ResponseTypes     []string
}

// HTTPAPI is what API Gateway applies before a route's function runs: its authorizers.
type HTTPAPI struct {
	LogicalID string
	// DefaultAuthorizer names the authorizer of routes that name none ("" for none).
	DefaultAuthorizer string
	Authorizers       map[string]JWTAuthorizer
}

// JWTAuthorizer is an HttpApi authorizer (Auth.Authorizers.<name>).
type JWTAuthorizer struct {
	// JWT is true for a JwtConfiguration authorizer, false for a Lambda (REQUEST) one.
	JWT bool
	// IdentitySource is where the token is, "$request.header.Authorization" by default.
	IdentitySource string
	Issuer         string
	Audience       []string
	// Scopes are AuthorizationScopes of routes that declare none.
	Scopes []string
}

// Function is one AWS::Serverless::Function.
type Function struct {
	LogicalID string
	// Condition names the template condition the function depends on ("" when always present).
	Condition string
	// Timeout is the function's Timeout in seconds (its own, else the Globals'; 3 when neither).
	Timeout int
	// CapacityProvider is true when the function runs on Lambda Managed Instances
	// (CapacityProviderConfig), which allows longer timeouts.
	CapacityProvider bool
	// ReservedConcurrency is ReservedConcurrentExecutions (-1 when unset: no limit of its own).
	ReservedConcurrency int
	Environment         map[string]string
	HTTP                []HTTPEvent
	Kafka               []KafkaEvent
	S3                  []S3Event
	SQS                 []SQSEvent
	Schedules           []ScheduleEvent
}

// HTTPEvent is an HttpApi or Api event.
type HTTPEvent struct {
	Name, Path, Method string
	// APIID is the logical id of the HttpApi the route belongs to (its ApiId).
	APIID string
	// Authorizer is the route's Auth.Authorizer: "" for the API's default, "NONE" for none.
	Authorizer string
	// NoAuth is true for a route that opts out of the default authorizer (Authorizer: NONE).
	NoAuth bool
	// Scopes are the route's AuthorizationScopes: the token must carry at least one.
	Scopes []string
	// REST is true for an Api (REST API) event, whose authorizers live elsewhere.
	REST bool
}

// KafkaEvent is an MSK or SelfManagedKafka event source mapping.
type KafkaEvent struct {
	Name              string
	SelfManaged       bool
	Topics            []string
	StartingPosition  string
	BatchSize         int
	MaxBatchingWindow int // seconds
	ConsumerGroupID   string
	ReportItemFailure bool
	// Provisioned is true when the mapping runs in provisioned mode (ProvisionedPollerConfig).
	Provisioned bool
	// ResponseTypes is FunctionResponseTypes as written.
	ResponseTypes []string
}

// S3Event is an S3 notification: event names and key filters.
type S3Event struct {
	Name, Bucket   string
	Events         []string
	Prefix, Suffix string
	// Rules are the S3Key filter rules as written.
	Rules []FilterRule
}

// FilterRule is one S3Key filter rule.
type FilterRule struct{ Name, Value string }

// ScheduleEvent is a Schedule or ScheduleV2 event.
type ScheduleEvent struct {
	Name, Expression, Input string
	// RuleName and Description are the EventBridge rule's Name and Description.
	RuleName, Description string
}

// Defaults AWS applies when the template leaves a property out.
const (
	defaultKafkaBatchSize = 100
	defaultWindowSeconds  = 0
	defaultSQSBatchSize   = 10
	defaultVisibility     = 30
	defaultRetention      = 345600
)

// Load reads a template file. params override parameter defaults; !Ref and !Sub to parameters
// and pseudo parameters are resolved, so topics and schedules come out as strings.
func Load(path string, params map[string]string) (*Template, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	return Parse(body, params)
}

// Parse reads a template from memory; see Load.
func Parse(body []byte, params map[string]string) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("parse template: empty document")
	}
	root := doc.Content[0]
	r := resolver{params: map[string]string{
		"AWS::Region": "us-east-1", "AWS::AccountId": "000000000000", "AWS::Partition": "aws",
		"AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "local",
	}}
	if ps := get(root, "Parameters"); ps != nil {
		for i := 0; i+1 < len(ps.Content); i += 2 {
			if d := get(ps.Content[i+1], "Default"); d != nil {
				r.params[ps.Content[i].Value] = d.Value
			}
		}
	}
	for k, v := range params {
		r.params[k] = v
	}

	globalTimeout, err := r.intOr(get(get(get(root, "Globals"), "Function"), "Timeout"), 3)
	if err != nil {
		return nil, fmt.Errorf("parse template: Globals.Function.Timeout: %w", err)
	}
	t := &Template{Functions: map[string]*Function{}, HTTPAPIs: map[string]*HTTPAPI{}, Queues: map[string]*Queue{}}
	resources := get(root, "Resources")
	if resources == nil {
		return nil, fmt.Errorf("parse template: no Resources")
	}
	// !Ref to a queue is its URL, wherever the queue is declared.
	for i := 0; i+1 < len(resources.Content); i += 2 {
		if id, res := resources.Content[i].Value, resources.Content[i+1]; scalar(get(res, "Type")) == "AWS::SQS::Queue" {
			r.params[id] = QueueURL(cmp.Or(r.str(get(get(res, "Properties"), "QueueName")), id))
		}
	}
	for i := 0; i+1 < len(resources.Content); i += 2 {
		id, res := resources.Content[i].Value, resources.Content[i+1]
		if scalar(get(res, "Type")) == "AWS::Serverless::HttpApi" {
			t.HTTPAPIs[id] = r.httpAPI(id, res)
			continue
		}
		if scalar(get(res, "Type")) == "AWS::SQS::Queue" {
			q, err := r.queue(id, res)
			if err != nil {
				return nil, fmt.Errorf("queue %s: %w", id, err)
			}
			t.Queues[id] = q
			continue
		}
		if scalar(get(res, "Type")) != "AWS::Serverless::Function" {
			continue
		}
		f, err := r.function(id, res)
		if err == nil {
			f.Timeout, err = r.intOr(get(get(res, "Properties"), "Timeout"), globalTimeout)
			// SAM merges the Globals' variables into each function's, the function's winning.
			for k, v := range r.variables(get(root, "Globals"), "Function") {
				if _, own := f.Environment[k]; !own {
					f.Environment[k] = v
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", id, err)
		}
		t.Functions[id] = f
	}
	return t, nil
}

// QueueURL is the URL of the queue named name, in the region and account the template resolves
// pseudo parameters to: what !Ref of an AWS::SQS::Queue gives.
func QueueURL(name string) string {
	return "https://sqs.us-east-1.amazonaws.com/000000000000/" + name
}

// Names returns the function logical ids, sorted.
func (t *Template) Names() []string {
	out := make([]string, 0, len(t.Functions))
	for n := range t.Functions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type resolver struct{ params map[string]string }

func (r resolver) function(id string, res *yaml.Node) (*Function, error) {
	f := &Function{LogicalID: id, Condition: scalar(get(res, "Condition")), Environment: r.variables(res, "Properties")}
	props := get(res, "Properties")
	f.CapacityProvider = get(props, "CapacityProviderConfig") != nil
	var err error
	if f.ReservedConcurrency, err = r.intOr(get(props, "ReservedConcurrentExecutions"), -1); err != nil {
		return nil, fmt.Errorf("ReservedConcurrentExecutions: %w", err)
	}
	events := get(props, "Events")
	if events == nil {
		return f, nil
	}
	for i := 0; i+1 < len(events.Content); i += 2 {
		name, ev := events.Content[i].Value, events.Content[i+1]
		p := get(ev, "Properties")
		switch typ := scalar(get(ev, "Type")); typ {
		case "HttpApi", "Api":
			h := HTTPEvent{Name: name, Path: r.str(get(p, "Path")), Method: strings.ToUpper(r.str(get(p, "Method"))),
				APIID: ref(get(p, "ApiId")), Authorizer: r.str(get(get(p, "Auth"), "Authorizer")),
				Scopes: r.strs(get(get(p, "Auth"), "AuthorizationScopes")), REST: typ == "Api"}
			h.NoAuth = h.Authorizer == "NONE"
			f.HTTP = append(f.HTTP, h)
		case "MSK", "SelfManagedKafka":
			k := KafkaEvent{Name: name, SelfManaged: typ == "SelfManagedKafka",
				StartingPosition: r.str(get(p, "StartingPosition")), ConsumerGroupID: r.str(get(p, "ConsumerGroupId")),
				BatchSize: defaultKafkaBatchSize, MaxBatchingWindow: defaultWindowSeconds}
			if k.SelfManaged {
				k.ConsumerGroupID = r.str(get(get(p, "SelfManagedKafkaEventSourceConfig"), "ConsumerGroupId"))
				if k.ConsumerGroupID == "" {
					k.ConsumerGroupID = r.str(get(p, "ConsumerGroupId"))
				}
			}
			for _, tn := range seq(get(p, "Topics")) {
				k.Topics = append(k.Topics, r.str(tn))
			}
			if len(k.Topics) == 0 {
				return nil, fmt.Errorf("event %s: no Topics", name)
			}
			var err error
			if k.BatchSize, err = r.intOr(get(p, "BatchSize"), k.BatchSize); err != nil {
				return nil, fmt.Errorf("event %s: BatchSize: %w", name, err)
			}
			if k.MaxBatchingWindow, err = r.intOr(get(p, "MaximumBatchingWindowInSeconds"), k.MaxBatchingWindow); err != nil {
				return nil, fmt.Errorf("event %s: MaximumBatchingWindowInSeconds: %w", name, err)
			}
			k.Provisioned = get(p, "ProvisionedPollerConfig") != nil
			for _, fr := range seq(get(p, "FunctionResponseTypes")) {
				k.ResponseTypes = append(k.ResponseTypes, r.str(fr))
				if r.str(fr) == "ReportBatchItemFailures" {
					k.ReportItemFailure = true
				}
			}
			f.Kafka = append(f.Kafka, k)
		case "SQS":
			q, err := r.sqsEvent(name, p)
			if err != nil {
				return nil, err
			}
			f.SQS = append(f.SQS, q)
		case "S3":
			f.S3 = append(f.S3, r.s3Event(name, p))
		case "Schedule", "ScheduleV2":
			expr := get(p, "ScheduleExpression")
			if expr == nil {
				expr = get(p, "Schedule")
			}
			f.Schedules = append(f.Schedules, ScheduleEvent{Name: name, Expression: r.str(expr), Input: r.str(get(p, "Input")),
				RuleName: r.str(get(p, "Name")), Description: r.str(get(p, "Description"))})
		}
	}
	return f, nil
}

// s3Event reads an S3 event's notification settings.
func (r resolver) s3Event(name string, p *yaml.Node) S3Event {
	s := S3Event{Name: name, Bucket: r.str(get(p, "Bucket"))}
	evs := get(p, "Events")
	if evs != nil && evs.Kind == yaml.SequenceNode {
		for _, e := range evs.Content {
			s.Events = append(s.Events, r.str(e))
		}
	} else if evs != nil {
		s.Events = []string{r.str(evs)}
	}
	for _, rule := range seq(get(get(get(p, "Filter"), "S3Key"), "Rules")) {
		s.Rules = append(s.Rules, FilterRule{Name: r.str(get(rule, "Name")), Value: r.str(get(rule, "Value"))})
		switch r.str(get(rule, "Name")) { // S3 takes these two names in lower case only
		case "prefix":
			s.Prefix = r.str(get(rule, "Value"))
		case "suffix":
			s.Suffix = r.str(get(rule, "Value"))
		}
	}
	return s
}

// sqsEvent reads an SQS event's properties, with Lambda's defaults.
func (r resolver) sqsEvent(name string, p *yaml.Node) (SQSEvent, error) {
	q := SQSEvent{Name: name, Queue: getAttID(get(p, "Queue"), "Arn"), BatchSize: defaultSQSBatchSize}
	var err error
	if q.BatchSize, err = r.intOr(get(p, "BatchSize"), q.BatchSize); err != nil {
		return q, fmt.Errorf("event %s: BatchSize: %w", name, err)
	}
	if q.MaxBatchingWindow, err = r.intOr(get(p, "MaximumBatchingWindowInSeconds"), defaultWindowSeconds); err != nil {
		return q, fmt.Errorf("event %s: MaximumBatchingWindowInSeconds: %w", name, err)
	}
	if q.MaximumConcurrency, err = r.intOr(get(get(p, "ScalingConfig"), "MaximumConcurrency"), 0); err != nil {
		return q, fmt.Errorf("event %s: ScalingConfig.MaximumConcurrency: %w", name, err)
	}
	q.Enabled = r.str(get(p, "Enabled")) != "false"
	q.ResponseTypes = r.strs(get(p, "FunctionResponseTypes"))
	q.ReportItemFailure = slices.Contains(q.ResponseTypes, "ReportBatchItemFailures")
	return q, nil
}

// queue reads an AWS::SQS::Queue with SQS's defaults.
func (r resolver) queue(id string, res *yaml.Node) (*Queue, error) {
	p := get(res, "Properties")
	q := &Queue{LogicalID: id, Name: r.str(get(p, "QueueName")), FIFO: r.str(get(p, "FifoQueue")) == "true"}
	var err error
	if q.VisibilityTimeout, err = r.intOr(get(p, "VisibilityTimeout"), defaultVisibility); err != nil {
		return nil, fmt.Errorf("VisibilityTimeout: %w", err)
	}
	if q.MessageRetentionPeriod, err = r.intOr(get(p, "MessageRetentionPeriod"), defaultRetention); err != nil {
		return nil, fmt.Errorf("MessageRetentionPeriod: %w", err)
	}
	if rp := get(p, "RedrivePolicy"); rp != nil {
		q.DeadLetterQueue = getAttID(get(rp, "deadLetterTargetArn"), "Arn")
		if q.MaxReceiveCount, err = r.intOr(get(rp, "maxReceiveCount"), 0); err != nil {
			return nil, fmt.Errorf("RedrivePolicy.maxReceiveCount: %w", err)
		}
	}
	if q.Name == "" {
		q.Name = id // CloudFormation would generate one from the stack and logical id
	}
	q.URL = QueueURL(q.Name)
	return q, nil
}

// getAttID is the logical id of a !GetAtt <id>.<attr> (or {"Fn::GetAtt": [id, attr]}); "" for
// anything else.
func getAttID(n *yaml.Node, attr string) string {
	switch {
	case n == nil:
		return ""
	case n.Tag == "!GetAtt" && n.Kind == yaml.ScalarNode:
		if id, a, ok := strings.Cut(n.Value, "."); ok && a == attr {
			return id
		}
	case n.Tag == "!GetAtt" && n.Kind == yaml.SequenceNode && len(n.Content) == 2 && n.Content[1].Value == attr:
		return n.Content[0].Value
	case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "Fn::GetAtt":
		if l := n.Content[1]; l.Kind == yaml.SequenceNode && len(l.Content) == 2 && l.Content[1].Value == attr {
			return l.Content[0].Value
		}
	}
	return ""
}

// variables reads <key>.Environment.Variables of a node.
func (r resolver) variables(n *yaml.Node, key string) map[string]string {
	out := map[string]string{}
	if vars := get(get(get(n, key), "Environment"), "Variables"); vars != nil {
		for i := 0; i+1 < len(vars.Content); i += 2 {
			out[vars.Content[i].Value] = r.str(vars.Content[i+1])
		}
	}
	return out
}

func (r resolver) httpAPI(id string, res *yaml.Node) *HTTPAPI {
	auth := get(get(res, "Properties"), "Auth")
	a := &HTTPAPI{LogicalID: id, DefaultAuthorizer: r.str(get(auth, "DefaultAuthorizer")), Authorizers: map[string]JWTAuthorizer{}}
	if as := get(auth, "Authorizers"); as != nil && as.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(as.Content); i += 2 {
			n := as.Content[i+1]
			jc := get(n, "JwtConfiguration")
			a.Authorizers[as.Content[i].Value] = JWTAuthorizer{JWT: jc != nil,
				IdentitySource: cmp.Or(r.str(get(n, "IdentitySource")), "$request.header.Authorization"),
				Issuer:         r.str(get(jc, "issuer")), Audience: r.strs(get(jc, "audience")),
				Scopes: r.strs(get(n, "AuthorizationScopes")),
			}
		}
	}
	return a
}

// strs resolves a list of scalars (each resolved as str), or one scalar as a list of one.
func (r resolver) strs(n *yaml.Node) []string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return []string{r.str(n)}
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		out = append(out, r.str(e))
	}
	return out
}

// ref is the logical id a !Ref (or {"Ref": ...}) names, unresolved (a resource, not a
// parameter); "" for anything else.
func ref(n *yaml.Node) string {
	switch {
	case n == nil:
		return ""
	case n.Tag == "!Ref" && n.Kind == yaml.ScalarNode:
		return n.Value
	case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "Ref":
		return n.Content[1].Value
	}
	return ""
}

// str resolves a scalar, !Ref or !Sub to a string; other intrinsics resolve to "".
func (r resolver) str(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	switch n.Tag {
	case "!Ref":
		return r.params[n.Value]
	case "!Sub":
		if n.Kind == yaml.ScalarNode {
			return r.sub(n.Value, nil)
		}
		if n.Kind == yaml.SequenceNode && len(n.Content) == 2 {
			vars := map[string]string{}
			for i := 0; i+1 < len(n.Content[1].Content); i += 2 {
				vars[n.Content[1].Content[i].Value] = r.str(n.Content[1].Content[i+1])
			}
			return r.sub(n.Content[0].Value, vars)
		}
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		switch n.Content[0].Value {
		case "Ref":
			return r.params[n.Content[1].Value]
		case "Fn::Sub":
			return r.sub(n.Content[1].Value, nil)
		}
	}
	// Plain scalars carry YAML's own tags (!!str, !!int); CloudFormation's are single-bang.
	if n.Kind == yaml.ScalarNode && (strings.HasPrefix(n.Tag, "!!") || !strings.HasPrefix(n.Tag, "!")) {
		return n.Value
	}
	return ""
}

// sub expands ${Name} from vars, then parameters; ${Res.Attr} and unknown names stay as they are.
func (r resolver) sub(s string, vars map[string]string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		name := s[i+2 : i+j]
		if v, ok := vars[name]; ok {
			b.WriteString(v)
		} else if v, ok := r.params[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(s[i : i+j+1])
		}
		s = s[i+j+1:]
	}
}

func (r resolver) intOr(n *yaml.Node, def int) (int, error) {
	s := r.str(n)
	if s == "" {
		return def, nil
	}
	return strconv.Atoi(s)
}

// get returns the value of key in a mapping node; an empty key returns the node itself.
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil {
		return nil
	}
	if key == "" {
		return n
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func seq(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}
