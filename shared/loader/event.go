package loader

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// DecodeS3Event reads an S3 notification as AWS, MinIO or versitygw send it: {"Records": [...]}
// (AWS, MinIO; MinIO adds top-level EventName and Key), a bare record or an array of records
// (versitygw's webhook), or a test event (versitygw at start-up, AWS s3:TestEvent), which
// gives an event with no records.
func DecodeS3Event(body []byte) (events.S3Event, error) {
	var ev events.S3Event
	body = bytes.TrimSpace(body)
	switch {
	case len(body) == 0:
		return ev, fmt.Errorf("decode S3 event: empty body")
	case body[0] == '[':
		if err := json.Unmarshal(body, &ev.Records); err != nil {
			return ev, fmt.Errorf("decode S3 event records: %w", err)
		}
		return ev, nil
	}
	var probe struct {
		Records json.RawMessage `json:"Records"`
		Event   string          `json:"Event"`
		S3      json.RawMessage `json:"s3"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return ev, fmt.Errorf("decode S3 event: %w", err)
	}
	switch {
	case probe.Records != nil:
		if err := json.Unmarshal(body, &ev); err != nil {
			return ev, fmt.Errorf("decode S3 event: %w", err)
		}
	case probe.S3 != nil:
		var rec events.S3EventRecord
		if err := json.Unmarshal(body, &rec); err != nil {
			return ev, fmt.Errorf("decode S3 event record: %w", err)
		}
		ev.Records = []events.S3EventRecord{rec}
	case probe.Event == "s3:TestEvent":
		// Nothing to load.
	default:
		return ev, fmt.Errorf("decode S3 event: no Records, s3 or Event field in %.100s", body)
	}
	return ev, nil
}
