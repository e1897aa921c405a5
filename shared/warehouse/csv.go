package warehouse

import (
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"time"

	"github.com/shopspring/decimal"
)

// WriteCSV writes the result of a query as CSV with a header line. Values keep their exact form:
// decimals with their full scale (money stays 10.50, never 10.5 or a float), times in RFC 3339,
// JSON and nested values as JSON, NULL as an empty field.
func WriteCSV(rows *sql.Rows, w io.Writer) error {
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("read columns: %w", err)
	}
	out := csv.NewWriter(w)
	if err := out.Write(cols); err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	rec := make([]string, len(cols))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read row: %w", err)
		}
		for i, v := range vals {
			rec[i] = formatValue(v)
		}
		if err := out.Write(rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	out.Flush()
	return out.Error()
}

// formatValue renders one scanned value for CSV.
func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case bool, int, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64:
		return fmt.Sprint(x)
	case *big.Int:
		return x.String()
	}
	if d, ok := decimalOf(v); ok {
		return d
	}
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

// scaledDecimal is how a driver hands out a DECIMAL: an unscaled integer and its scale.
// duckdb-go's Decimal has exactly this shape; matching the shape keeps cgo out of this package.
type scaledDecimal struct {
	Width uint8
	Scale uint8
	Value *big.Int
}

var scaledDecimalType = reflect.TypeFor[scaledDecimal]()

// decimalOf formats a DECIMAL value with its declared scale (trailing zeros kept), because the
// driver's own String drops them (10.50 would print as 10.5).
func decimalOf(v any) (string, bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct || !rv.Type().ConvertibleTo(scaledDecimalType) {
		return "", false
	}
	d := rv.Convert(scaledDecimalType).Interface().(scaledDecimal)
	if d.Value == nil {
		return "", true
	}
	return decimal.NewFromBigInt(d.Value, -int32(d.Scale)).StringFixed(int32(d.Scale)), true
}
