package s3local

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bearer"
)

// maxWebhookBody bounds one notification; S3 events are a few KB.
const maxWebhookBody = 1 << 20

// WebhookHandler receives the event notifications an S3 server posts to a webhook (versitygw's
// --event-webhook-url) and hands their ObjectCreated records to onCreated as an events.S3Event.
// Other events (deletes, versitygw's test event at start) are acknowledged and dropped. If token
// is not empty, a request must carry it in its Authorization header: "Bearer <token>", or Basic
// with the token as the password. versitygw (v1.8.0) cannot be given headers for its webhook, but
// it posts with Go's http.Client, which sends a URL's user info as Basic authorization: give it
// http://fin:<token>@host/s3-events. A token in the query string is refused: query strings end up
// in access logs and proxies.
//
// Webhooks are fire-and-forget: an event lost while the receiver was down is not sent again, so
// the consumer should also list the bucket now and then to catch up.
func WebhookHandler(token string, onCreated func(events.S3Event), logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST S3 event notifications here", http.StatusMethodNotAllowed)
			return
		}
		if token != "" && !hasToken(r, token) {
			http.Error(w, "missing or wrong token: send Authorization: Bearer <token>, or put it in the webhook URL's user info (http://fin:<token>@host/s3-events)", http.StatusUnauthorized)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		ev, err := decodeS3Event(body)
		if err != nil {
			logger.Warn("S3 webhook: not an S3 event", "err", err, "body", truncate(body, 300))
			http.Error(w, "not an S3 event notification: "+err.Error(), http.StatusBadRequest)
			return
		}
		created := ev.Records[:0]
		for _, rec := range ev.Records {
			if isObjectCreated(rec.EventName) {
				created = append(created, rec)
			}
		}
		if len(created) > 0 && onCreated != nil {
			onCreated(events.S3Event{Records: created})
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// decodeS3Event decodes a notification as events.S3Event. versitygw v1.8.0 sends an empty
// glacierEventData.restoreEventData.lifecycleRestorationExpiryTime with every event, which is not
// a time: a record that fails to decode is decoded again without its optional *EventData blocks,
// which no ObjectCreated consumer needs.
func decodeS3Event(body []byte) (events.S3Event, error) {
	var ev events.S3Event
	var raw struct {
		Records []json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return ev, err
	}
	for i, r := range raw.Records {
		var rec events.S3EventRecord
		if err := json.Unmarshal(r, &rec); err != nil {
			var fields map[string]json.RawMessage
			if json.Unmarshal(r, &fields) != nil {
				return ev, fmt.Errorf("record %d: %w", i, err)
			}
			for k := range fields {
				if strings.HasSuffix(k, "EventData") {
					delete(fields, k)
				}
			}
			trimmed, _ := json.Marshal(fields)
			if err := json.Unmarshal(trimmed, &rec); err != nil {
				return ev, fmt.Errorf("record %d: %w", i, err)
			}
		}
		ev.Records = append(ev.Records, rec)
	}
	return ev, nil
}

func hasToken(r *http.Request, token string) bool {
	_, password, _ := r.BasicAuth()
	return bearer.Equal(cmp.Or(bearer.Token(r), password), token)
}

// isObjectCreated accepts both spellings S3 servers use: ObjectCreated:Put (AWS, versitygw)
// and s3:ObjectCreated:Put (MinIO).
func isObjectCreated(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, "s3:"), "ObjectCreated:")
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
