package dbtrun

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// maxWaiting bounds the requests one read of the queue takes: ten receives of SQS's ten each. A
// load sends one per commit, a few a second, so a build of a few seconds leaves far fewer.
const maxWaiting = 100

// SQSRequests is the build-request queue in SQS (the template's BuildRequests, BUILD_QUEUE_URL).
type SQSRequests struct {
	Client   *sqs.Client
	QueueURL string
}

// ReceiveWaiting takes the requests visible now, without waiting for more (WaitTimeSeconds 0).
func (q SQSRequests) ReceiveWaiting(ctx context.Context) ([]events.SQSMessage, error) {
	var msgs []events.SQSMessage
	for len(msgs) < maxWaiting {
		out, err := q.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.QueueURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 0})
		if err != nil {
			// What was received stays hidden until the visibility timeout: build it now.
			if len(msgs) > 0 {
				return msgs, nil
			}
			return nil, fmt.Errorf("receive from %s: %w", q.QueueURL, err)
		}
		for _, m := range out.Messages {
			msgs = append(msgs, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body)})
		}
		if len(out.Messages) == 0 {
			break
		}
	}
	return msgs, nil
}

// DeleteMessages deletes msgs, ten a call.
func (q SQSRequests) DeleteMessages(ctx context.Context, msgs []events.SQSMessage) error {
	var errs []error
	for i := 0; i < len(msgs); i += 10 {
		var entries []types.DeleteMessageBatchRequestEntry
		for j, m := range msgs[i:min(i+10, len(msgs))] {
			entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), ReceiptHandle: aws.String(m.ReceiptHandle)})
		}
		out, err := q.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.QueueURL), Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("delete from %s: %w", q.QueueURL, err))
			continue
		}
		for _, f := range out.Failed {
			errs = append(errs, fmt.Errorf("delete from %s: %s: %s", q.QueueURL, aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}
