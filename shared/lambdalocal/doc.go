// Package lambdalocal runs the functions of a SAM template on one machine as AWS would: HTTP
// requests become API Gateway HTTP API (payload 2.0) events behind the template's JWT
// authorizers, Kafka batches become MSK events through the template's event source mappings, new
// objects become S3 events filtered by the template's rules and invoked asynchronously,
// messages of the template's SQS queues become SQS batches through its SQS event sources, and
// schedules become EventBridge invocations; a function's reserved concurrency throttles as in
// Lambda. Handlers receive the real aws-lambda-go event types
// and never know they are not in AWS. It knows no function of any stack: the stack that uses it
// builds the handlers and says which template entries they serve.
package lambdalocal
