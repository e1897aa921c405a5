package bank

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// FieldError is a value the database refused, named by the field a client sent.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// translate turns the database's constraint violations into domain errors naming the field,
// so callers (the API) can answer 4xx instead of 5xx. Other errors pass through.
func translate(err error) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	switch pg.Code {
	case "23505": // unique_violation
		if pg.ConstraintName == "customers_email_key" {
			return fmt.Errorf("%w", ErrEmailTaken)
		}
		return &FieldError{Field: fieldOf(pg.ConstraintName), Reason: "already exists"}
	case "23514": // check_violation
		if pg.ConstraintName == "accounts_balance_check" {
			return ErrInsufficientFunds
		}
		return &FieldError{Field: fieldOf(pg.ConstraintName), Reason: "is not allowed: " + pg.Message}
	case "23503": // foreign_key_violation
		return &FieldError{Field: fieldOf(pg.ConstraintName), Reason: "refers to a row that does not exist or does not match"}
	case "23502": // not_null_violation
		return &FieldError{Field: pg.ColumnName, Reason: "is required"}
	case "22001": // string_data_right_truncation
		return &FieldError{Field: pg.ColumnName, Reason: "is too long"}
	case "22P02", "22023": // invalid_text_representation (enums, uuids), invalid_parameter_value
		return &FieldError{Field: pg.ColumnName, Reason: "has an invalid value: " + pg.Message}
	}
	return err
}

// fieldOf derives the column from a constraint named <table>_<column>_<kind>.
func fieldOf(constraint string) string {
	for _, table := range []string{"customers_", "accounts_", "transactions_"} {
		if rest, ok := strings.CutPrefix(constraint, table); ok {
			for _, kind := range []string{"_check", "_fkey", "_key"} {
				if f, ok := strings.CutSuffix(rest, kind); ok {
					return f
				}
			}
			return rest
		}
	}
	return constraint
}
