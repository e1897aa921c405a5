-- The API lists every table in creation order with a keyset cursor (created_at, id): these
-- indexes let a page be read without sorting the whole table.
CREATE INDEX customers_created_at_idx ON customers (created_at, customer_id) WHERE closed_at IS NULL;
CREATE INDEX accounts_created_at_idx ON accounts (created_at, account_id);
CREATE INDEX transactions_created_at_idx ON transactions (created_at, transaction_id);
