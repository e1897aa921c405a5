// Package strictjson reads a JSON document the way a contract should be read: a field the
// target does not declare is an error, not silently dropped, and so is anything after the value
// (encoding/json's Unmarshal allows neither check; its Decoder allows one of them).
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Unmarshal decodes data, one JSON value, into v, refusing unknown fields and trailing data.
func Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// Decode stops after the first value: "{}{}" or "{} x" must not pass as "{}".
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the JSON value at offset %d", dec.InputOffset())
	}
	return nil
}
