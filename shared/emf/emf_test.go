package emf

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestEmitWritesEMF(t *testing.T) {
	var b bytes.Buffer
	w := New(&b)
	w.now = func() time.Time { return time.UnixMilli(1700000000000) }
	if err := w.Emit(map[string]string{"Function": "cdc-landing"}, Metric{"RecordsLanded", 42, Count}, Metric{"DLQRecords", 1, Count}); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Function      string
		RecordsLanded float64
		DLQRecords    float64
		AWS           struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
	}
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %s", b.String())
	}
	cw := line.AWS.CloudWatchMetrics
	if line.Function != "cdc-landing" || line.RecordsLanded != 42 || line.AWS.Timestamp != 1700000000000 ||
		len(cw) != 1 || cw[0].Namespace != Namespace || cw[0].Dimensions[0][0] != "Function" || len(cw[0].Metrics) != 2 || cw[0].Metrics[1].Name != "DLQRecords" {
		t.Fatalf("EMF line %s", b.String())
	}
	if b.Bytes()[b.Len()-1] != '\n' {
		t.Fatal("EMF lines must end with a newline")
	}
}
