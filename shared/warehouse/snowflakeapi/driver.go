package snowflakeapi

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// The database/sql side: a connector whose connections hold no session (each statement is one
// stateless HTTP exchange), so the pool's size (SetMaxOpenConns) only bounds how many run at once.

type connector struct{ c *Client }

func (k connector) Connect(context.Context) (driver.Conn, error) { return conn(k), nil }
func (k connector) Driver() driver.Driver                        { return sqlDriver{} }

// sqlDriver exists because driver.Connector must name one; connections come from the connector.
type sqlDriver struct{}

func (sqlDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("snowflake sql api: open a client with snowflakeapi.New")
}

type conn struct{ c *Client }

var errQueriesOnly = errors.New("snowflake sql api: this client runs single queries only (no prepared statements, no transactions)")

func (conn) Prepare(string) (driver.Stmt, error) { return nil, errQueriesOnly }
func (conn) Close() error                        { return nil }
func (conn) Begin() (driver.Tx, error)           { return nil, errQueriesOnly }

// QueryContext runs the statement and returns its rows; later partitions are fetched as the
// reader reaches them.
func (cn conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	b, err := bindings(args)
	if err != nil {
		return nil, fmt.Errorf("snowflake sql api: %w", err)
	}
	res, err := cn.c.execute(ctx, query, b)
	if err != nil {
		return nil, err
	}
	return &rows{ctx: ctx, c: cn.c, handle: res.Handle, cols: res.Meta.RowType, data: res.Data,
		partitions: max(1, len(res.Meta.Partitions))}, nil
}

type rows struct {
	ctx        context.Context
	c          *Client
	handle     string
	cols       []Column
	data       [][]*string // the current partition
	next       int         // next row of data
	part       int         // the current partition's number
	partitions int
}

func (r *rows) Columns() []string {
	names := make([]string, len(r.cols))
	for i, c := range r.cols {
		names[i] = c.Name
	}
	return names
}

func (r *rows) Close() error { return nil }

// ColumnTypeDatabaseTypeName is the Snowflake type as rowType names it (FIXED, TEXT, ...).
func (r *rows) ColumnTypeDatabaseTypeName(i int) string { return r.cols[i].Type }

func (r *rows) Next(dest []driver.Value) error {
	for r.next >= len(r.data) {
		if r.part+1 >= r.partitions {
			return io.EOF
		}
		r.part++
		data, err := r.c.partition(r.ctx, r.handle, r.part)
		if err != nil {
			return fmt.Errorf("snowflake sql api: statement %s: %w", r.handle, err)
		}
		r.data, r.next = data, 0
	}
	row := r.data[r.next]
	r.next++
	if len(row) != len(r.cols) {
		return fmt.Errorf("snowflake sql api: statement %s: a row of %d values for %d columns", r.handle, len(row), len(r.cols))
	}
	for i, col := range r.cols {
		v, err := col.value(row[i])
		if err != nil {
			return fmt.Errorf("snowflake sql api: statement %s: column %s (%s): %w", r.handle, col.Name, col.Type, err)
		}
		dest[i] = v
	}
	return nil
}
