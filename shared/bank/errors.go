package bank

import "fmt"

// FieldError is a value the database refused, named by the field a client sent.
type FieldError struct {
	Field  string
	In     string // where the field is sent: "" for the body, "query", "header"
	Reason string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Reason }

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// columnError names the column the database refused, when it said which.
func columnError(column, reason string) error {
	if column == "" {
		return fmt.Errorf("a value %s: %w", reason, ErrInvalid)
	}
	return &FieldError{Field: column, Reason: reason}
}
