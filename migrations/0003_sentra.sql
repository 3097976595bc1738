-- Sentra IKM records, their yearly figures, the log of every change, and the
-- idempotency keys of writes. docs/DATA_MODEL.md explains every choice.
--
-- Enumerations are stored as the numbers of their sentra.v1 proto enums
-- (status, sector_group); kbli_version as the year of the KBLI edition.
-- Optional values are NULL when absent, never ''.
-- The rules the service validates are held here too (CHECK constraints for
-- one-row rules, triggers for rules that need the date or other tables), so
-- no other writer can store what the service would refuse.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- "Today" for date rules: the calendar date in Indonesia's easternmost zone
-- (WIT, UTC+9), so a date that is already today anywhere in the country is
-- accepted. The C validator uses the same rule.
CREATE FUNCTION sentra_today() RETURNS date LANGUAGE sql STABLE AS $$
    SELECT (now() AT TIME ZONE 'Asia/Jayapura')::date
$$;

CREATE TABLE sentra (
    id              uuid PRIMARY KEY,
    regency_code    text NOT NULL REFERENCES region (code)
                    CHECK (regency_code ~ '^[0-9]{2}\.[0-9]{2}$'),
    province_code   text GENERATED ALWAYS AS (split_part(regency_code, '.', 1)) STORED,
    district_code   text CHECK (district_code ~ '^[0-9]{2}\.[0-9]{2}\.[0-9]{2}$'
                                AND left(district_code, 5) = regency_code),
    village_code    text CHECK (village_code ~ '^[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4}$'
                                AND left(village_code, 5) = regency_code
                                AND (district_code IS NULL OR left(village_code, 8) = district_code)),
    address         text NOT NULL DEFAULT '' CHECK (char_length(address) <= 500),
    latitude        double precision CHECK (latitude BETWEEN -11.5 AND 6.5),
    longitude       double precision CHECK (longitude BETWEEN 94.5 AND 141.5),
    name            text NOT NULL CHECK (char_length(btrim(name)) >= 3 AND char_length(name) <= 200),
    commodity       text NOT NULL DEFAULT '' CHECK (char_length(commodity) <= 200),
    main_product    text NOT NULL DEFAULT '' CHECK (char_length(main_product) <= 200),
    kbli_code       text NOT NULL CHECK (kbli_code ~ '^(1[0-9]|2[0-9]|3[0-3])[0-9]{3}$'),
    kbli_version    smallint NOT NULL CHECK (kbli_version IN (2020, 2025)),
    sector_group    smallint NOT NULL CHECK (sector_group BETWEEN 1 AND 6),
    status          smallint NOT NULL CHECK (status BETWEEN 1 AND 5),
    -- designated now: status designated (2) or revitalised (3). Stats and the
    -- ListSentra designation filter both use this column.
    designated      boolean GENERATED ALWAYS AS (status IN (2, 3)) STORED,
    formed_on       date,
    decree_number   text CHECK (char_length(decree_number) BETWEEN 1 AND 100),
    decree_date     date,
    decree_official text CHECK (char_length(decree_official) BETWEEN 1 AND 200),
    contact_name    text NOT NULL DEFAULT '' CHECK (char_length(contact_name) <= 200),
    contact_phone   text NOT NULL DEFAULT '' CHECK (contact_phone ~ '^[0-9+() -]{0,32}$'),
    -- lower-cased text the ListSentra "text" filter searches (trigram index)
    search          text GENERATED ALWAYS AS
                    (lower(name || ' ' || commodity || ' ' || main_product)) STORED,
    version         bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    created_by      uuid,              -- api_token.id (no FK: loaders may write NULL)
    updated_by      uuid,
    deleted_at      timestamptz,       -- a tombstone: kept for sync
    CHECK ((latitude IS NULL) = (longitude IS NULL)),
    -- designated (2) and revitalised (3) sentra hold a decree
    CHECK (status NOT IN (2, 3) OR (decree_number IS NOT NULL AND decree_date IS NOT NULL)),
    CHECK (decree_date IS NULL OR formed_on IS NULL OR decree_date >= formed_on),
    -- The remaining rules of server/validate.c (docs/DATA_MODEL.md,
    -- "Validation"): one-line texts hold no control characters (the address
    -- may hold line breaks and tabs), and dates start in 1945. Valid UTF-8 is
    -- held by the database encoding itself.
    CONSTRAINT sentra_one_line_texts CHECK (
        name !~ '[[:cntrl:]]' AND commodity !~ '[[:cntrl:]]'
        AND main_product !~ '[[:cntrl:]]' AND contact_name !~ '[[:cntrl:]]'
        AND coalesce(decree_number, '') !~ '[[:cntrl:]]'
        AND coalesce(decree_official, '') !~ '[[:cntrl:]]'),
    CONSTRAINT sentra_address_text CHECK (
        address !~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]'),
    CONSTRAINT sentra_dates_from_1945 CHECK (
        formed_on >= DATE '1945-01-01' AND decree_date >= DATE '1945-01-01')
);

-- Scope and list orders. Live rows only for the list orders: tombstones are
-- served by sync through sentra_change.
CREATE INDEX sentra_regency_name ON sentra (regency_code, name, id) WHERE deleted_at IS NULL;
CREATE INDEX sentra_province_name ON sentra (province_code, name, id) WHERE deleted_at IS NULL;
CREATE INDEX sentra_name ON sentra (name, id) WHERE deleted_at IS NULL;
CREATE INDEX sentra_created ON sentra (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX sentra_updated ON sentra (updated_at, id);
CREATE INDEX sentra_kbli ON sentra (kbli_code text_pattern_ops) WHERE deleted_at IS NULL;
CREATE INDEX sentra_search ON sentra USING gin (search gin_trgm_ops) WHERE deleted_at IS NULL;

CREATE TABLE sentra_figures (
    sentra_id           uuid NOT NULL REFERENCES sentra (id) ON DELETE CASCADE,
    year                smallint NOT NULL CHECK (year BETWEEN 1945 AND 2100),
    business_units      integer NOT NULL DEFAULT 0 CHECK (business_units >= 0),
    workers_male        integer NOT NULL DEFAULT 0 CHECK (workers_male >= 0),
    workers_female      integer NOT NULL DEFAULT 0 CHECK (workers_female >= 0),
    investment          bigint NOT NULL DEFAULT 0 CHECK (investment >= 0),
    production_value    bigint NOT NULL DEFAULT 0 CHECK (production_value >= 0),
    material_value      bigint NOT NULL DEFAULT 0 CHECK (material_value >= 0),
    capacity            bigint NOT NULL DEFAULT 0 CHECK (capacity >= 0),
    capacity_unit       text NOT NULL DEFAULT '' CHECK (char_length(capacity_unit) <= 32),
    export_share_bp     integer NOT NULL DEFAULT 0 CHECK (export_share_bp BETWEEN 0 AND 10000),
    export_destinations text[] NOT NULL DEFAULT '{}'
                        CHECK (array_to_string(export_destinations, ',') ~ '^([A-Z]{2}(,[A-Z]{2})*)?$'
                               AND cardinality(export_destinations) <= 250),
    PRIMARY KEY (sentra_id, year),
    CONSTRAINT sentra_figures_unit_text CHECK (capacity_unit !~ '[[:cntrl:]]')
);

-- Every change to a sentra: who, when, old and new version. txid is the
-- writing transaction's 64-bit id; sync orders the feed by (txid, seq) and
-- serves only transactions below the oldest one still running, so that a
-- reader never skips a change that commits late (see docs/SYNC.md).
-- Filled by the triggers sentra_log_ins and sentra_log below, so every
-- writer is logged.
CREATE TABLE sentra_change (
    seq         bigserial PRIMARY KEY,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    sentra_id   uuid NOT NULL,
    op          char(1) NOT NULL CHECK (op IN ('C', 'U', 'D')),
    old_version bigint,
    new_version bigint NOT NULL,
    token_id    uuid,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    -- Where the record was when it changed, so a pull can filter the feed by
    -- scope without joining the record, and a record moved to another
    -- regency reaches both its old readers (as a tombstone: it left their
    -- scope) and its new ones. regency_code is written by sentra_log /
    -- sentra_log_inserted; old_regency_code is set (by sync_change_scope,
    -- migrations/0006_sync.sql) only on the change that moved the record.
    regency_code     text,
    old_regency_code text
);

CREATE INDEX sentra_change_feed ON sentra_change (txid, seq);
CREATE INDEX sentra_change_sentra ON sentra_change (sentra_id, seq);

-- Writes carrying an idempotency key are applied at most once per (token,
-- key). The row is inserted by the write function in the same transaction
-- as the write, so it exists exactly when the write committed. Kept 7 days.
CREATE TABLE idempotency (
    token_id    uuid NOT NULL,
    key         text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 200),
    method      text NOT NULL,       -- 'create', 'update', 'delete'
    sentra_id   uuid,
    version     bigint,              -- the version the write produced
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);

CREATE INDEX idempotency_created ON idempotency (created_at);

-- Versions only move forward: an UPDATE that does not raise the version gets
-- version + 1 and a fresh updated_at, so no writer can change a record
-- without its readers and the sync feed seeing a new version.
CREATE FUNCTION sentra_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version < OLD.version THEN
        RAISE EXCEPTION USING ERRCODE = 'SE010',
            MESSAGE = 'version may not go backwards',
            DETAIL = OLD.version::text;
    END IF;
    IF NEW.version = OLD.version THEN
        NEW.version := OLD.version + 1;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER sentra_bump BEFORE UPDATE ON sentra
    FOR EACH ROW EXECUTE FUNCTION sentra_bump();

-- The change log, written for every writer. op: C create, U update, D delete
-- (deleted_at set). who: the token that wrote (updated_by). The change row
-- carries the record's regency from the start, so that sync_change_scope
-- (migrations/0006_sync.sql) need not read the record back; it still finds
-- the previous change's regency for updates.
--
-- Updates are logged per row (the trigger needs OLD). Inserts are logged per
-- statement, from the statement's transition table: an INSERT of many
-- records (a set-wise push, sync_push_new_records in migrations/
-- 0006_sync.sql; COPY; a bulk load) writes their change rows in one INSERT,
-- in the order the records were inserted, instead of one PL/pgSQL call and
-- one INSERT per record (and so fires the NOTIFY trigger sync_notify once
-- per statement, not once per record). The trigger sentra_log fires on
-- UPDATE only, so the function's INSERT branch (the same row as
-- sentra_log_inserted writes) is not reached through it.
CREATE FUNCTION sentra_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                                   regency_code)
        VALUES (NEW.id, 'C', NULL, NEW.version, NEW.updated_by, NEW.regency_code);
    ELSE
        INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                                   regency_code)
        VALUES (NEW.id,
                CASE WHEN NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL
                     THEN 'D' ELSE 'U' END,
                OLD.version, NEW.version, NEW.updated_by, NEW.regency_code);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sentra_log_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                               regency_code)
    SELECT n.id, 'C', NULL, n.version, n.updated_by, n.regency_code FROM new_rows n;
    RETURN NULL;
END $$;

CREATE TRIGGER sentra_log_ins AFTER INSERT ON sentra
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sentra_log_inserted();
CREATE TRIGGER sentra_log AFTER UPDATE ON sentra
    FOR EACH ROW EXECUTE FUNCTION sentra_log();
