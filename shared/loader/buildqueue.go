package loader

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQSBuildRequests sends build requests to an SQS queue (the template's BuildRequests).
type SQSBuildRequests struct {
	Client   *sqs.Client
	QueueURL string
}

// SendMessage sends body to the queue.
func (q SQSBuildRequests) SendMessage(ctx context.Context, body string) error {
	if _, err := q.Client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.QueueURL), MessageBody: aws.String(body)}); err != nil {
		return fmt.Errorf("send to %s: %w", q.QueueURL, err)
	}
	return nil
}
