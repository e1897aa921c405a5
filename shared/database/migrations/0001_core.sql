-- The system of record: customers, their accounts and the ledger of transactions.
-- Money is NUMERIC(18,2); timestamps are set by the database; no foreign key cascades, so removing
-- a row can never take financial history with it.

CREATE TYPE account_type AS ENUM ('CHECKING', 'SAVINGS');
CREATE TYPE account_status AS ENUM ('ACTIVE', 'INACTIVE');
CREATE TYPE transaction_type AS ENUM ('DEPOSIT', 'WITHDRAWAL', 'TRANSFER');
CREATE TYPE transaction_status AS ENUM ('COMPLETED', 'REVERSED');

-- ISO 4217 currencies whose minor unit is 2 decimals: the ledger stores NUMERIC(18,2), so
-- currencies with 0 or 3 minor digits (JPY, KWD, ...) are not accepted rather than mis-stored.
-- Kept equal to money.Currencies in Go by a test.
CREATE TABLE currencies (
    code text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    name text NOT NULL
);
INSERT INTO currencies (code, name) VALUES
    ('AED', 'UAE Dirham'), ('AUD', 'Australian Dollar'), ('BGN', 'Bulgarian Lev'),
    ('BRL', 'Brazilian Real'), ('CAD', 'Canadian Dollar'), ('CHF', 'Swiss Franc'),
    ('CNY', 'Yuan Renminbi'), ('CZK', 'Czech Koruna'), ('DKK', 'Danish Krone'),
    ('EUR', 'Euro'), ('GBP', 'Pound Sterling'), ('HKD', 'Hong Kong Dollar'),
    ('HUF', 'Forint'), ('ILS', 'New Israeli Sheqel'), ('INR', 'Indian Rupee'),
    ('MXN', 'Mexican Peso'), ('MYR', 'Malaysian Ringgit'), ('NOK', 'Norwegian Krone'),
    ('NZD', 'New Zealand Dollar'), ('PHP', 'Philippine Peso'), ('PLN', 'Zloty'),
    ('RON', 'Romanian Leu'), ('SEK', 'Swedish Krona'), ('SGD', 'Singapore Dollar'),
    ('THB', 'Baht'), ('TRY', 'Turkish Lira'), ('USD', 'US Dollar'), ('ZAR', 'Rand');

CREATE TABLE customers (
    customer_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    first_name    text NOT NULL CONSTRAINT customers_first_name_check
                       CHECK (length(btrim(first_name)) BETWEEN 1 AND 100),
    last_name     text NOT NULL CONSTRAINT customers_last_name_check
                       CHECK (length(btrim(last_name)) BETWEEN 1 AND 100),
    email         text NOT NULL CONSTRAINT customers_email_check
                       CHECK (length(email) <= 254
                              AND email ~ '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'),
    address_line  text CONSTRAINT customers_address_line_check CHECK (length(address_line) <= 200),
    city          text CONSTRAINT customers_city_check CHECK (length(city) <= 100),
    postal_code   text CONSTRAINT customers_postal_code_check CHECK (length(postal_code) <= 20),
    country       text CONSTRAINT customers_country_check CHECK (country ~ '^[A-Z]{2}$'),
    -- A customer who holds (or held) accounts is never removed: it is closed, which keeps the
    -- KYC record the accounts point at. One who never held an account can be deleted outright.
    closed_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       bigint NOT NULL DEFAULT 1
);
-- One open customer per email address, whatever its case.
CREATE UNIQUE INDEX customers_email_key ON customers (lower(email)) WHERE closed_at IS NULL;

CREATE TABLE accounts (
    account_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id   uuid NOT NULL REFERENCES customers (customer_id) ON DELETE RESTRICT,
    account_type  account_type NOT NULL,
    currency      text NOT NULL REFERENCES currencies (code),
    nickname      text CONSTRAINT accounts_nickname_check CHECK (length(nickname) <= 100),
    balance       numeric(18,2) NOT NULL DEFAULT 0 CONSTRAINT accounts_balance_check CHECK (balance >= 0),
    status        account_status NOT NULL DEFAULT 'ACTIVE',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       bigint NOT NULL DEFAULT 1,
    -- Lets transactions prove by foreign key that they are in their accounts' currency.
    CONSTRAINT accounts_account_id_currency_key UNIQUE (account_id, currency)
);
CREATE INDEX accounts_customer_id_idx ON accounts (customer_id);

CREATE TABLE transactions (
    transaction_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id              uuid NOT NULL,
    transaction_type        transaction_type NOT NULL,
    amount                  numeric(18,2) NOT NULL CONSTRAINT transactions_amount_check CHECK (amount > 0),
    currency                text NOT NULL REFERENCES currencies (code),
    -- The destination of a transfer; only transfers have one, and never the source itself.
    related_account_id      uuid,
    status                  transaction_status NOT NULL DEFAULT 'COMPLETED',
    description             text CONSTRAINT transactions_description_check CHECK (length(description) <= 500),
    category                text CONSTRAINT transactions_category_check CHECK (length(category) <= 50),
    -- A reversal is a compensating entry that points at the transaction it undoes; a
    -- transaction is reversed at most once.
    reverses_transaction_id uuid UNIQUE REFERENCES transactions (transaction_id) ON DELETE RESTRICT,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    version                 bigint NOT NULL DEFAULT 1,
    CONSTRAINT transactions_account_currency_fkey FOREIGN KEY (account_id, currency)
        REFERENCES accounts (account_id, currency),
    CONSTRAINT transactions_related_account_currency_fkey FOREIGN KEY (related_account_id, currency)
        REFERENCES accounts (account_id, currency),
    CONSTRAINT transactions_related_account_check CHECK (
        (transaction_type = 'TRANSFER') = (related_account_id IS NOT NULL)
        AND related_account_id IS DISTINCT FROM account_id)
);
CREATE INDEX transactions_account_id_idx ON transactions (account_id, created_at);
CREATE INDEX transactions_related_account_id_idx ON transactions (related_account_id) WHERE related_account_id IS NOT NULL;

-- Every update bumps the version (optimistic concurrency), stamps updated_at, and keeps
-- created_at as it was: clients cannot set either timestamp.
CREATE FUNCTION touch_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := OLD.created_at;
    NEW.updated_at := now();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END $$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch_row();
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch_row();
CREATE TRIGGER transactions_touch BEFORE UPDATE ON transactions FOR EACH ROW EXECUTE FUNCTION touch_row();

-- A posted transaction's money fields never change: corrections are reversals.
CREATE FUNCTION transactions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.account_id IS DISTINCT FROM OLD.account_id
       OR NEW.transaction_type IS DISTINCT FROM OLD.transaction_type
       OR NEW.amount IS DISTINCT FROM OLD.amount
       OR NEW.currency IS DISTINCT FROM OLD.currency
       OR NEW.related_account_id IS DISTINCT FROM OLD.related_account_id
       OR NEW.reverses_transaction_id IS DISTINCT FROM OLD.reverses_transaction_id THEN
        RAISE EXCEPTION 'posted transaction % cannot change its amount, accounts or type; reverse it instead', OLD.transaction_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_immutable';
    END IF;
    IF OLD.status = 'REVERSED' AND NEW.status <> 'REVERSED' THEN
        RAISE EXCEPTION 'transaction % is reversed for good', OLD.transaction_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_immutable';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER transactions_immutable BEFORE UPDATE ON transactions FOR EACH ROW EXECUTE FUNCTION transactions_immutable();

-- Ledger rows are never deleted.
CREATE FUNCTION transactions_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'transaction % cannot be deleted; reverse it instead', OLD.transaction_id
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'transactions_no_delete';
END $$;
CREATE TRIGGER transactions_no_delete BEFORE DELETE ON transactions FOR EACH ROW EXECUTE FUNCTION transactions_no_delete();

-- Idempotency keys for the API: the first response to a key is stored in the same database
-- transaction as the write it describes, and replayed for 24 hours.
CREATE TABLE idempotency_keys (
    principal      text NOT NULL,
    idem_key       text NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    method         text NOT NULL,
    path           text NOT NULL,
    request_hash   bytea NOT NULL,
    status_code    integer,
    response_body  bytea,
    response_headers jsonb,
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    PRIMARY KEY (principal, idem_key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- Change capture: updates and deletes carry whole before-images, and one publication names the
-- captured tables for both the Go capture and Debezium.
ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE accounts REPLICA IDENTITY FULL;
ALTER TABLE transactions REPLICA IDENTITY FULL;
CREATE PUBLICATION fin_cdc FOR TABLE customers, accounts, transactions;
