package bank

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const customerColumns = `customer_id, first_name, last_name, email, address_line, city, postal_code,
	country, closed_at, created_at, updated_at, version`

func scanCustomer(row pgx.Row) (Customer, error) {
	var c Customer
	err := row.Scan(&c.ID, &c.FirstName, &c.LastName, &c.Email, &c.AddressLine, &c.City, &c.PostalCode,
		&c.Country, &c.ClosedAt, &c.CreatedAt, &c.UpdatedAt, &c.Version)
	return c, err
}

// CustomerFields are the fields a client may set on a customer.
type CustomerFields struct {
	FirstName   string
	LastName    string
	Email       string
	AddressLine *string
	City        *string
	PostalCode  *string
	Country     *string
}

func (f CustomerFields) normalised() CustomerFields {
	f.FirstName = strings.TrimSpace(f.FirstName)
	f.LastName = strings.TrimSpace(f.LastName)
	f.Email = strings.TrimSpace(f.Email)
	return f
}

// CreateCustomer inserts a customer. id may be uuid.Nil to let the database choose.
func CreateCustomer(ctx context.Context, q Querier, id uuid.UUID, f CustomerFields) (Customer, error) {
	f = f.normalised()
	var idArg any
	if id != uuid.Nil {
		idArg = id
	}
	c, err := scanCustomer(q.QueryRow(ctx, `INSERT INTO customers
		(customer_id, first_name, last_name, email, address_line, city, postal_code, country)
		VALUES (coalesce($1, uuidv7()), $2, $3, $4, $5, $6, $7, $8) RETURNING `+customerColumns,
		idArg, f.FirstName, f.LastName, f.Email, f.AddressLine, f.City, f.PostalCode, f.Country))
	if err != nil {
		return Customer{}, fmt.Errorf("create customer: %w", Translate(err))
	}
	return c, nil
}

// GetCustomer reads one customer that is not closed.
func GetCustomer(ctx context.Context, q Querier, id uuid.UUID) (Customer, error) {
	c, err := scanCustomer(q.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers
		WHERE customer_id = $1 AND closed_at IS NULL`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Customer{}, fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Customer{}, fmt.Errorf("read customer %s: %w", id, err)
	}
	return c, nil
}

// UpdateCustomer replaces the mutable fields of an open customer. When expectedVersion is not
// nil the row must still be at that version.
func UpdateCustomer(ctx context.Context, q Querier, id uuid.UUID, f CustomerFields, expectedVersion *int64) (Customer, error) {
	f = f.normalised()
	c, err := scanCustomer(q.QueryRow(ctx, `UPDATE customers SET first_name = $2, last_name = $3, email = $4,
		address_line = $5, city = $6, postal_code = $7, country = $8
		WHERE customer_id = $1 AND closed_at IS NULL AND ($9::bigint IS NULL OR version = $9)
		RETURNING `+customerColumns,
		id, f.FirstName, f.LastName, f.Email, f.AddressLine, f.City, f.PostalCode, f.Country, expectedVersion))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := GetCustomer(ctx, q, id); gerr != nil {
			return Customer{}, gerr
		}
		return Customer{}, fmt.Errorf("customer %s: %w", id, ErrVersionMismatch)
	}
	if err != nil {
		return Customer{}, fmt.Errorf("update customer %s: %w", id, Translate(err))
	}
	return c, nil
}

// RemoveCustomer takes a customer out of the current set, inside tx. A customer with an active
// account is refused. One who held accounts is closed (the row stays, as the accounts point at
// it); one who never held an account is deleted. It reports whether the row was deleted.
func RemoveCustomer(ctx context.Context, tx pgx.Tx, id uuid.UUID) (deleted bool, err error) {
	var closed bool
	err = tx.QueryRow(ctx, `SELECT closed_at IS NOT NULL FROM customers WHERE customer_id = $1 FOR UPDATE`, id).Scan(&closed)
	if errors.Is(err, pgx.ErrNoRows) || closed {
		return false, fmt.Errorf("customer %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("read customer %s: %w", id, err)
	}
	var accounts, active int
	// FOR SHARE on the accounts keeps one from being reactivated while we decide.
	err = tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'ACTIVE')
		FROM (SELECT status FROM accounts WHERE customer_id = $1 FOR SHARE) a`, id).Scan(&accounts, &active)
	if err != nil {
		return false, fmt.Errorf("read accounts of customer %s: %w", id, err)
	}
	switch {
	case active > 0:
		return false, fmt.Errorf("customer %s holds %d active accounts: %w", id, active, ErrHasActiveAccounts)
	case accounts > 0:
		_, err = tx.Exec(ctx, `UPDATE customers SET closed_at = now() WHERE customer_id = $1`, id)
	default:
		_, err = tx.Exec(ctx, `DELETE FROM customers WHERE customer_id = $1`, id)
	}
	if err != nil {
		return false, fmt.Errorf("remove customer %s: %w", id, Translate(err))
	}
	return accounts == 0, nil
}
