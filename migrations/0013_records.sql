-- The records of a sentra (issue 18): its member businesses (anggota), its
-- institution (kelembagaan, one per sentra), the obstacles it reports
-- (permasalahan dan hambatan) and the assistance it received (fasilitasi).
-- docs/DATA_MODEL.md ("Records of a sentra") states every rule and why;
-- docs/SYNC.md ("Several kinds of record") how the feed carries them.
--
-- Each kind has what a sentra record has, for every writer (the service,
-- sync pushes, loaders, psql): the rules as CHECK constraints and row
-- triggers, the scope of its sentra (regency_code copied from the sentra
-- under its row lock), versions that only grow (sentra_bump), tombstones,
-- change rows in sentra_change (the audit log and the sync feed), hard
-- deletes logged and their ids kept, and a derived statistics row per
-- sentra (record counts on its sentra_stat row) kept in the same transaction.
--
-- Enumerations are stored as the numbers of their sentra.v1 proto enums,
-- kbli_version as the year of the KBLI edition (as for sentra). Optional
-- values are NULL (dates, years, codes, ids) or '' (texts) when absent.
-- Column names are the proto field paths, '.' written '_' (board_chair for
-- board.chair): server/services/records.c maps the two by that rule.

-- ---------------------------------------------------------------- helpers

-- The size class of a business (Permenperin 64/M-IND/PER/7/2016): 1 small
-- (<= 19 workers and investment < Rp 1 billion), 2 medium ((<= 19 workers
-- and >= Rp 1 billion) or (>= 20 workers and <= Rp 15 billion)), 3 large
-- (>= 20 workers and > Rp 15 billion). Investment excludes land and
-- buildings. The three cases cover every pair exactly once.
CREATE FUNCTION member_size_class(p_workers bigint, p_investment bigint)
RETURNS smallint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN p_workers <= 19 AND p_investment < 1000000000 THEN 1
                WHEN p_workers <= 19 OR p_investment <= 15000000000 THEN 2
                ELSE 3 END::smallint
$$;

-- No id twice in a list (recipients of an assistance).
CREATE FUNCTION uuid_array_distinct(a uuid[])
RETURNS boolean LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT cardinality(a) = (SELECT count(DISTINCT x) FROM unnest(a) AS u(x))
$$;

CREATE FUNCTION record_raise(p_what text, v text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(v) > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003',
            MESSAGE = 'invalid ' || p_what || ': ' || cardinality(v) || ' field(s)',
            DETAIL = array_to_string(v, E'\n');
    END IF;
END $$;

-- ---------------------------------------------------------------- tables

CREATE TABLE member (
    id               uuid PRIMARY KEY,
    sentra_id        uuid NOT NULL REFERENCES sentra (id) ON DELETE CASCADE,
    -- the sentra's, copied by record_scope under the sentra's row lock
    regency_code     text NOT NULL,
    province_code    text GENERATED ALWAYS AS (split_part(regency_code, '.', 1)) STORED,
    name             text NOT NULL CHECK (char_length(btrim(name)) >= 3 AND char_length(name) <= 200),
    owner_name       text NOT NULL CHECK (char_length(btrim(owner_name)) >= 1
                                          AND char_length(owner_name) <= 200),
    owner_sex        smallint NOT NULL CHECK (owner_sex IN (1, 2)),
    nib              text CHECK (nib ~ '^[0-9]{13}$'),
    kbli_code        text CHECK (kbli_code ~ '^(1[0-9]|2[0-9]|3[0-3])[0-9]{3}$'),
    kbli_version     smallint CHECK (kbli_version IN (2020, 2025)),
    products         text NOT NULL DEFAULT '' CHECK (char_length(products) <= 500),
    workers_male     integer NOT NULL DEFAULT 0 CHECK (workers_male >= 0),
    workers_female   integer NOT NULL DEFAULT 0 CHECK (workers_female >= 0),
    investment       bigint NOT NULL DEFAULT 0
                     CHECK (investment BETWEEN 0 AND 100000000000000),
    production_value bigint NOT NULL DEFAULT 0
                     CHECK (production_value BETWEEN 0 AND 100000000000000),
    joined_year      smallint CHECK (joined_year BETWEEN 1945 AND 2100),
    left_year        smallint CHECK (left_year BETWEEN 1945 AND 2100),
    -- derived, never typed in
    size_class       smallint GENERATED ALWAYS AS
                     (member_size_class(workers_male::bigint + workers_female, investment)) STORED,
    version          bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    created_by       uuid,
    updated_by       uuid,
    deleted_at       timestamptz,
    CONSTRAINT member_kbli_version_with_code CHECK ((kbli_code IS NULL) = (kbli_version IS NULL)),
    CONSTRAINT member_left_year_after_joined CHECK (left_year >= joined_year),
    CONSTRAINT member_name_text CHECK (sentra_text_ok(name, false)),
    CONSTRAINT member_owner_name_text CHECK (sentra_text_ok(owner_name, false)),
    CONSTRAINT member_products_text CHECK (sentra_text_ok(products, false))
);

-- Keyset pages by (name, id) for one sentra, a regency, a province, the
-- country (docs/DATA_MODEL.md, "Indexes: a million members"). The one of a
-- sentra holds tombstones too: the foreign key's cascades use it.
CREATE INDEX member_sentra_name ON member (sentra_id, name, id);
CREATE INDEX member_regency_name ON member (regency_code, name, id) WHERE deleted_at IS NULL;
CREATE INDEX member_province_name ON member (province_code, name, id) WHERE deleted_at IS NULL;
CREATE INDEX member_name ON member (name, id) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX member_nib_unique ON member (sentra_id, nib)
    WHERE deleted_at IS NULL AND nib IS NOT NULL;

CREATE TABLE assistance (
    id                   uuid PRIMARY KEY,
    sentra_id            uuid NOT NULL REFERENCES sentra (id) ON DELETE CASCADE,
    regency_code         text NOT NULL,
    province_code        text GENERATED ALWAYS AS (split_part(regency_code, '.', 1)) STORED,
    kind                 smallint NOT NULL CHECK (kind BETWEEN 1 AND 7),
    certification        smallint CHECK (certification BETWEEN 1 AND 4),
    provider             smallint NOT NULL CHECK (provider BETWEEN 1 AND 5),
    provider_name        text NOT NULL DEFAULT '' CHECK (char_length(provider_name) <= 200),
    programme            text NOT NULL CHECK (char_length(btrim(programme)) >= 3
                                              AND char_length(programme) <= 200),
    year                 smallint NOT NULL CHECK (year BETWEEN 1945 AND 2100),
    value                bigint NOT NULL DEFAULT 0 CHECK (value BETWEEN 0 AND 100000000000000),
    recipient_member_ids uuid[] NOT NULL DEFAULT '{}'
                         CHECK (cardinality(recipient_member_ids) <= 500
                                AND array_position(recipient_member_ids, NULL) IS NULL),
    version              bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    created_by           uuid,
    updated_by           uuid,
    deleted_at           timestamptz,
    CONSTRAINT assistance_certification_with_kind CHECK ((kind = 3) = (certification IS NOT NULL)),
    CONSTRAINT assistance_recipient_member_ids_once CHECK (uuid_array_distinct(recipient_member_ids)),
    CONSTRAINT assistance_provider_name_text CHECK (sentra_text_ok(provider_name, false)),
    CONSTRAINT assistance_programme_text CHECK (sentra_text_ok(programme, false))
);

CREATE INDEX assistance_sentra_year ON assistance (sentra_id, year, id);
CREATE INDEX assistance_regency_year ON assistance (regency_code, year, id) WHERE deleted_at IS NULL;
CREATE INDEX assistance_province_year ON assistance (province_code, year, id) WHERE deleted_at IS NULL;
CREATE INDEX assistance_year ON assistance (year, id) WHERE deleted_at IS NULL;

CREATE TABLE obstacle (
    id            uuid PRIMARY KEY,
    sentra_id     uuid NOT NULL REFERENCES sentra (id) ON DELETE CASCADE,
    regency_code  text NOT NULL,
    province_code text GENERATED ALWAYS AS (split_part(regency_code, '.', 1)) STORED,
    category      smallint NOT NULL CHECK (category BETWEEN 1 AND 10),
    description   text NOT NULL CHECK (char_length(btrim(description)) >= 3
                                       AND char_length(description) <= 2000),
    severity      smallint NOT NULL CHECK (severity BETWEEN 1 AND 3),
    reported_on   date NOT NULL CHECK (reported_on >= DATE '1945-01-01'),
    status        smallint NOT NULL CHECK (status BETWEEN 1 AND 3),
    resolution    text NOT NULL DEFAULT '' CHECK (char_length(resolution) <= 2000),
    resolved_on   date CHECK (resolved_on >= DATE '1945-01-01'),
    -- the assistance that addressed it (of the same sentra: record_rules)
    assistance_id uuid REFERENCES assistance (id) ON DELETE SET NULL,
    version       bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    created_by    uuid,
    updated_by    uuid,
    deleted_at    timestamptz,
    CONSTRAINT obstacle_resolution_when_resolved CHECK (
        CASE WHEN status = 3 THEN btrim(resolution, E' \t\n\r') <> '' ELSE resolution = '' END),
    CONSTRAINT obstacle_resolved_on_when_resolved CHECK ((status = 3) = (resolved_on IS NOT NULL)),
    CONSTRAINT obstacle_resolved_on_after_reported CHECK (resolved_on >= reported_on),
    CONSTRAINT obstacle_description_text CHECK (sentra_text_ok(description, true)),
    CONSTRAINT obstacle_resolution_text CHECK (sentra_text_ok(resolution, true))
);

CREATE INDEX obstacle_sentra_reported ON obstacle (sentra_id, reported_on, id);
CREATE INDEX obstacle_regency_reported ON obstacle (regency_code, reported_on, id) WHERE deleted_at IS NULL;
CREATE INDEX obstacle_province_reported ON obstacle (province_code, reported_on, id) WHERE deleted_at IS NULL;
CREATE INDEX obstacle_reported ON obstacle (reported_on, id) WHERE deleted_at IS NULL;
CREATE INDEX obstacle_assistance ON obstacle (assistance_id) WHERE assistance_id IS NOT NULL;

-- One per sentra, keyed by it. id repeats the key so that every kind has
-- an id column (the generic triggers below read it).
CREATE TABLE institution (
    sentra_id           uuid PRIMARY KEY REFERENCES sentra (id) ON DELETE CASCADE,
    id                  uuid GENERATED ALWAYS AS (sentra_id) STORED,
    regency_code        text NOT NULL,
    province_code       text GENERATED ALWAYS AS (split_part(regency_code, '.', 1)) STORED,
    form                smallint NOT NULL CHECK (form BETWEEN 1 AND 5),
    legal_basis         text NOT NULL DEFAULT '' CHECK (char_length(legal_basis) <= 200),
    registration_number text NOT NULL DEFAULT '' CHECK (char_length(registration_number) <= 100),
    board_chair         text NOT NULL DEFAULT '' CHECK (char_length(board_chair) <= 200),
    board_secretary     text NOT NULL DEFAULT '' CHECK (char_length(board_secretary) <= 200),
    board_treasurer     text NOT NULL DEFAULT '' CHECK (char_length(board_treasurer) <= 200),
    facility_name       text NOT NULL DEFAULT '' CHECK (char_length(facility_name) <= 200),
    facility_provides   text NOT NULL DEFAULT '' CHECK (char_length(facility_provides) <= 200),
    facility_condition  smallint CHECK (facility_condition BETWEEN 1 AND 4),
    version             bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    created_by          uuid,
    updated_by          uuid,
    deleted_at          timestamptz,
    CONSTRAINT institution_legal_basis_when_formed CHECK (form <> 1 OR legal_basis = ''),
    CONSTRAINT institution_registration_number_when_formed CHECK (form <> 1 OR registration_number = ''),
    CONSTRAINT institution_board_chair_required CHECK (form = 1 OR btrim(board_chair) <> ''),
    CONSTRAINT institution_facility_condition_with_name CHECK (
        (btrim(facility_name) = '') = (facility_condition IS NULL)),
    CONSTRAINT institution_facility_provides_with_name CHECK (
        btrim(facility_name) <> '' OR facility_provides = ''),
    CONSTRAINT institution_legal_basis_text CHECK (sentra_text_ok(legal_basis, false)),
    CONSTRAINT institution_registration_number_text CHECK (sentra_text_ok(registration_number, false)),
    CONSTRAINT institution_board_chair_text CHECK (sentra_text_ok(board_chair, false)),
    CONSTRAINT institution_board_secretary_text CHECK (sentra_text_ok(board_secretary, false)),
    CONSTRAINT institution_board_treasurer_text CHECK (sentra_text_ok(board_treasurer, false)),
    CONSTRAINT institution_facility_name_text CHECK (sentra_text_ok(facility_name, false)),
    CONSTRAINT institution_facility_provides_text CHECK (sentra_text_ok(facility_provides, false))
);

CREATE INDEX institution_regency ON institution (regency_code, sentra_id) WHERE deleted_at IS NULL;
CREATE INDEX institution_province ON institution (province_code, sentra_id) WHERE deleted_at IS NULL;

-- Ids of records removed by a hard DELETE (psql, a loader; the service only
-- tombstones), as sentra_purged keeps those of sentra: a record made again
-- with such an id would start at version 1, below the deletion the apps
-- hold. An institution's key is its sentra: one made again starts above the
-- logged deletion instead (record_scope).
CREATE TABLE record_purged (
    kind      smallint NOT NULL CHECK (kind BETWEEN 2 AND 5),
    id        uuid NOT NULL,
    version   bigint NOT NULL,       -- the version of the logged deletion
    purged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, id)
);

-- ---------------------------------------------------------------- the feed

-- Every kind is logged in sentra_change (docs/SYNC.md, "Several kinds of
-- record"): kind 1 sentra (every row written before this migration), 2
-- member, 3 institution, 4 obstacle, 5 assistance; record_id the record
-- (NULL for the sentra's own rows; an institution's is its sentra);
-- sentra_id the sentra the row is about. One table, one order, one cursor:
-- the guarantee of the feed holds for every kind as it did for sentra.
-- Both columns are added without rewriting the table (a constant default,
-- a NULL).
ALTER TABLE sentra_change
    ADD COLUMN kind smallint NOT NULL DEFAULT 1 CHECK (kind BETWEEN 1 AND 5),
    ADD COLUMN record_id uuid;

-- Clients that know only sentra read only sentra rows: through this index
-- a sentra-only pull of the whole country does not walk past a million
-- member rows.
CREATE INDEX sentra_change_sentra_feed ON sentra_change (txid, seq) WHERE kind = 1;

-- The change-log triggers now write old_regency_code themselves (they have
-- the old row), so sync_change_scope (migrations/0006_sync.sql) only fills
-- in the scope for other writers that leave it out; it looked up the
-- previous change of the sentra, which is now one of its kind-1 rows.
CREATE OR REPLACE FUNCTION sentra_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sentra_change (sentra_id, op, old_version, new_version, token_id,
                               regency_code, old_regency_code)
    VALUES (NEW.id,
            CASE WHEN NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL
                 THEN 'D' ELSE 'U' END,
            OLD.version, NEW.version, NEW.updated_by, NEW.regency_code,
            CASE WHEN OLD.regency_code IS DISTINCT FROM NEW.regency_code
                 THEN OLD.regency_code END);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION sync_change_scope() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    prev text;
BEGIN
    SELECT s.regency_code INTO NEW.regency_code FROM sentra s WHERE s.id = NEW.sentra_id;
    IF NEW.op <> 'C' AND NEW.kind = 1 AND NEW.old_regency_code IS NULL THEN
        SELECT c.regency_code INTO prev FROM sentra_change c
         WHERE c.sentra_id = NEW.sentra_id AND c.kind = 1 ORDER BY c.seq DESC LIMIT 1;
        IF prev IS DISTINCT FROM NEW.regency_code THEN
            NEW.old_regency_code := prev;
        END IF;
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER sync_change_scope ON sentra_change;
CREATE TRIGGER sync_change_scope BEFORE INSERT ON sentra_change
    FOR EACH ROW WHEN (NEW.regency_code IS NULL)
    EXECUTE FUNCTION sync_change_scope();

-- ---------------------------------------------------------------- scope and rules

-- The sentra of a record being written, locked (FOR NO KEY UPDATE: every
-- other writer of the sentra or of its records waits), and its regency.
-- A record may be written only while its sentra is live, except by the
-- statement that tombstones it with its sentra (p_deleting). An update
-- (p_update) of a record whose sentra is gone can only come from a hard
-- DELETE of that sentra in this transaction, whose foreign keys remove its
-- records (and on the way set obstacle.assistance_id to NULL where an
-- assistance went first): NULL then, and the caller leaves the row alone,
-- as the same statement deletes it.
CREATE FUNCTION record_parent(p_sentra uuid, p_deleting boolean, p_update boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    reg text;
    gone timestamptz;
BEGIN
    SELECT s.regency_code, s.deleted_at INTO reg, gone FROM sentra s
     WHERE s.id = p_sentra FOR NO KEY UPDATE;
    IF NOT FOUND AND p_update THEN
        RETURN NULL;
    END IF;
    IF NOT FOUND OR (gone IS NOT NULL AND NOT p_deleting) THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003', MESSAGE = 'no such sentra',
            DETAIL = 'sentra_id: no sentra with this id';
    END IF;
    RETURN reg;
END $$;

-- The rules of a member row that need the date or other rows (the row's
-- own are its CHECK constraints). Lines "field: reason".
CREATE FUNCTION member_violations(r member, p_old member) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v text[] := '{}';
    this_year int := extract(year FROM sentra_today())::int;
BEGIN
    IF r.joined_year > this_year THEN
        v := v || 'joined_year: is in the future'::text;
    END IF;
    IF r.left_year > this_year THEN
        v := v || 'left_year: is in the future'::text;
    ELSIF r.left_year < r.joined_year THEN
        v := v || 'left_year: is before joined_year'::text;
    END IF;
    IF r.kbli_code IS NOT NULL AND r.kbli_version IS NULL THEN
        v := v || 'kbli_version: is required with a KBLI code'::text;
    ELSIF r.kbli_code IS NULL AND r.kbli_version IS NOT NULL THEN
        v := v || 'kbli_version: must be empty without a KBLI code'::text;
    END IF;
    IF r.nib IS NOT NULL AND r.nib IS DISTINCT FROM p_old.nib AND EXISTS (
        SELECT 1 FROM member m WHERE m.sentra_id = r.sentra_id AND m.nib = r.nib
           AND m.deleted_at IS NULL AND m.id <> r.id) THEN
        v := v || 'nib: is already the NIB of another member of this sentra'::text;
    END IF;
    RETURN v;
END $$;

CREATE FUNCTION obstacle_violations(r obstacle, p_old obstacle) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v text[] := '{}';
    today date := sentra_today();
BEGIN
    IF r.reported_on > today THEN
        v := v || 'reported_on: is in the future'::text;
    END IF;
    IF r.status = 3 AND btrim(r.resolution, E' \t\n\r') = '' THEN
        v := v || 'resolution: is required when the obstacle is resolved'::text;
    ELSIF r.status <> 3 AND r.resolution <> '' THEN
        v := v || 'resolution: must be empty until the obstacle is resolved'::text;
    END IF;
    IF r.status = 3 AND r.resolved_on IS NULL THEN
        v := v || 'resolved_on: is required'::text;
    ELSIF r.status <> 3 AND r.resolved_on IS NOT NULL THEN
        v := v || 'resolved_on: must be empty until the obstacle is resolved'::text;
    ELSIF r.resolved_on > today THEN
        v := v || 'resolved_on: is in the future'::text;
    ELSIF r.resolved_on < r.reported_on THEN
        v := v || 'resolved_on: is before reported_on'::text;
    END IF;
    IF r.assistance_id IS NOT NULL AND r.assistance_id IS DISTINCT FROM p_old.assistance_id
       AND NOT EXISTS (SELECT 1 FROM assistance a WHERE a.id = r.assistance_id
                        AND a.sentra_id = r.sentra_id AND a.deleted_at IS NULL) THEN
        v := v || 'assistance_id: is not an assistance record of this sentra'::text;
    END IF;
    RETURN v;
END $$;

CREATE FUNCTION assistance_violations(r assistance, p_old assistance) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v text[] := '{}';
    bad int;
BEGIN
    IF r.year > extract(year FROM sentra_today())::int THEN
        v := v || 'year: is in the future'::text;
    END IF;
    IF r.kind = 3 AND r.certification IS NULL THEN
        v := v || 'certification: is required when the kind is certification'::text;
    ELSIF r.kind <> 3 AND r.certification IS NOT NULL THEN
        v := v || 'certification: must be empty unless the kind is certification'::text;
    END IF;
    IF r.recipient_member_ids IS DISTINCT FROM p_old.recipient_member_ids THEN
        SELECT min(o - 1) INTO bad
          FROM unnest(r.recipient_member_ids) WITH ORDINALITY AS x(mid, o)
         WHERE NOT EXISTS (SELECT 1 FROM member m WHERE m.id = x.mid
                            AND m.sentra_id = r.sentra_id AND m.deleted_at IS NULL);
        IF bad IS NOT NULL THEN
            v := v || ('recipient_member_ids[' || bad || ']: is not a member of this sentra');
        END IF;
    END IF;
    RETURN v;
END $$;

CREATE FUNCTION institution_violations(r institution) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v text[] := '{}';
BEGIN
    IF r.form = 1 AND r.legal_basis <> '' THEN
        v := v || 'legal_basis: must be empty when the form is none'::text;
    END IF;
    IF r.form = 1 AND r.registration_number <> '' THEN
        v := v || 'registration_number: must be empty when the form is none'::text;
    END IF;
    IF r.form <> 1 AND btrim(r.board_chair) = '' THEN
        v := v || 'board.chair: is required unless the form is none'::text;
    END IF;
    IF btrim(r.facility_name) <> '' AND r.facility_condition IS NULL THEN
        v := v || 'facility.condition: is required'::text;
    ELSIF btrim(r.facility_name) = '' AND r.facility_condition IS NOT NULL THEN
        v := v || 'facility.condition: must be empty without a facility name'::text;
    END IF;
    IF btrim(r.facility_name) = '' AND r.facility_provides <> '' THEN
        v := v || 'facility.provides: must be empty without a facility name'::text;
    END IF;
    RETURN v;
END $$;

-- Every writer of a record, before the row is stored: its sentra locked and
-- live, its regency copied from the sentra, its sentra never changed, and
-- the rules above (for live rows, when what they read changed; the
-- statement that tombstones or moves a sentra's records re-checks nothing,
-- since nothing it checks changed). One trigger function per kind.
CREATE FUNCTION member_before() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reg text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.sentra_id <> OLD.sentra_id THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003', MESSAGE = 'invalid member',
            DETAIL = 'sentra_id: a member stays with its sentra (delete it, create it in the other)';
    END IF;
    reg := record_parent(NEW.sentra_id, NEW.deleted_at IS NOT NULL, TG_OP = 'UPDATE');
    IF reg IS NULL THEN
        RETURN NEW;
    END IF;
    NEW.regency_code := reg;
    IF NEW.deleted_at IS NULL THEN
        PERFORM record_raise('member', member_violations(NEW,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD END));
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION obstacle_before() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reg text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.sentra_id <> OLD.sentra_id THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003', MESSAGE = 'invalid obstacle',
            DETAIL = 'sentra_id: an obstacle stays with its sentra';
    END IF;
    reg := record_parent(NEW.sentra_id, NEW.deleted_at IS NOT NULL, TG_OP = 'UPDATE');
    IF reg IS NULL THEN
        RETURN NEW;
    END IF;
    NEW.regency_code := reg;
    IF NEW.deleted_at IS NULL THEN
        PERFORM record_raise('obstacle', obstacle_violations(NEW,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD END));
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION assistance_before() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reg text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.sentra_id <> OLD.sentra_id THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003', MESSAGE = 'invalid assistance',
            DETAIL = 'sentra_id: an assistance record stays with its sentra';
    END IF;
    reg := record_parent(NEW.sentra_id, NEW.deleted_at IS NOT NULL, TG_OP = 'UPDATE');
    IF reg IS NULL THEN
        RETURN NEW;
    END IF;
    NEW.regency_code := reg;
    IF NEW.deleted_at IS NULL THEN
        PERFORM record_raise('assistance', assistance_violations(NEW,
                CASE WHEN TG_OP = 'UPDATE' THEN OLD END));
    END IF;
    RETURN NEW;
END $$;

-- An institution made again after a hard DELETE starts above the deletion
-- that was logged for it, so that apps holding that tombstone take it.
CREATE FUNCTION institution_before() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reg text;
    pv bigint;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.sentra_id <> OLD.sentra_id THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003', MESSAGE = 'invalid institution',
            DETAIL = 'sentra_id: an institution stays with its sentra';
    END IF;
    reg := record_parent(NEW.sentra_id, NEW.deleted_at IS NOT NULL, TG_OP = 'UPDATE');
    IF reg IS NULL THEN
        RETURN NEW;
    END IF;
    NEW.regency_code := reg;
    IF TG_OP = 'INSERT' THEN
        DELETE FROM record_purged p WHERE p.kind = 3 AND p.id = NEW.sentra_id
        RETURNING p.version INTO pv;
        IF pv IS NOT NULL AND NEW.version <= pv THEN
            NEW.version := pv + 1;
        END IF;
    END IF;
    IF NEW.deleted_at IS NULL THEN
        PERFORM record_raise('institution', institution_violations(NEW));
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER member_before BEFORE INSERT OR UPDATE ON member
    FOR EACH ROW EXECUTE FUNCTION member_before();
CREATE TRIGGER obstacle_before BEFORE INSERT OR UPDATE ON obstacle
    FOR EACH ROW EXECUTE FUNCTION obstacle_before();
CREATE TRIGGER assistance_before BEFORE INSERT OR UPDATE ON assistance
    FOR EACH ROW EXECUTE FUNCTION assistance_before();
CREATE TRIGGER institution_before BEFORE INSERT OR UPDATE ON institution
    FOR EACH ROW EXECUTE FUNCTION institution_before();

-- Versions only move forward, as for sentra (the same function).
CREATE TRIGGER member_bump BEFORE UPDATE ON member FOR EACH ROW EXECUTE FUNCTION sentra_bump();
CREATE TRIGGER obstacle_bump BEFORE UPDATE ON obstacle FOR EACH ROW EXECUTE FUNCTION sentra_bump();
CREATE TRIGGER assistance_bump BEFORE UPDATE ON assistance FOR EACH ROW EXECUTE FUNCTION sentra_bump();
CREATE TRIGGER institution_bump BEFORE UPDATE ON institution FOR EACH ROW EXECUTE FUNCTION sentra_bump();

-- ---------------------------------------------------------------- change log

-- The log of every kind, for every writer, as sentra_log and its siblings
-- do for sentra (migrations/0003_sentra.sql, 0009_integrity.sql). TG_ARGV[0]
-- is the kind; every record table has id (an institution's is its
-- sentra), sentra_id, regency_code, version, updated_by and deleted_at.
-- PL/pgSQL compiles a trigger function once per table it is attached to,
-- so each table gets its own plans.
CREATE FUNCTION record_log_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k smallint := TG_ARGV[0]::smallint;
    gone uuid;
BEGIN
    IF k <> 3 THEN
        SELECT n.id INTO gone FROM new_rows n
          JOIN record_purged p ON p.kind = k AND p.id = n.id LIMIT 1;
        IF gone IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '23505',
                MESSAGE = format('a record with id %s existed and was deleted: its id is not used again',
                                 gone);
        END IF;
    END IF;
    INSERT INTO sentra_change (kind, record_id, sentra_id, op, old_version, new_version,
                               token_id, regency_code)
    SELECT k, n.id, n.sentra_id, 'C', NULL, n.version, n.updated_by, n.regency_code
      FROM new_rows n;
    RETURN NULL;
END $$;

CREATE FUNCTION record_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sentra_change (kind, record_id, sentra_id, op, old_version, new_version,
                               token_id, regency_code, old_regency_code)
    VALUES (TG_ARGV[0]::smallint, NEW.id, NEW.sentra_id,
            CASE WHEN NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL
                 THEN 'D' ELSE 'U' END,
            OLD.version, NEW.version, NEW.updated_by, NEW.regency_code,
            CASE WHEN OLD.regency_code IS DISTINCT FROM NEW.regency_code
                 THEN OLD.regency_code END);
    RETURN NULL;
END $$;

-- Hard deletes, by a DELETE of the record or through its sentra's foreign
-- key: logged as deletions at version + 1, the ids kept.
CREATE FUNCTION record_log_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k smallint := TG_ARGV[0]::smallint;
BEGIN
    INSERT INTO sentra_change (kind, record_id, sentra_id, op, old_version, new_version,
                               token_id, regency_code)
    SELECT k, o.id, o.sentra_id, 'D', o.version, o.version + 1, NULL, o.regency_code
      FROM old_rows o ORDER BY o.id;
    INSERT INTO record_purged (kind, id, version)
    SELECT k, o.id, o.version + 1 FROM old_rows o
    ON CONFLICT (kind, id) DO UPDATE SET version = EXCLUDED.version, purged_at = now();
    RETURN NULL;
END $$;

CREATE FUNCTION record_log_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k smallint := TG_ARGV[0]::smallint;
BEGIN
    EXECUTE format('INSERT INTO sentra_change (kind, record_id, sentra_id, op, old_version,'
                   ' new_version, token_id, regency_code)'
                   ' SELECT %s, t.id, t.sentra_id, ''D'', t.version, t.version + 1, NULL,'
                   ' t.regency_code FROM %I t ORDER BY t.id', k, TG_TABLE_NAME);
    EXECUTE format('INSERT INTO record_purged (kind, id, version)'
                   ' SELECT %s, t.id, t.version + 1 FROM %I t'
                   ' ON CONFLICT (kind, id) DO UPDATE SET version = EXCLUDED.version,'
                   ' purged_at = now()', k, TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER member_log_ins AFTER INSERT ON member REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_inserted('2');
CREATE TRIGGER member_log AFTER UPDATE ON member
    FOR EACH ROW EXECUTE FUNCTION record_log('2');
CREATE TRIGGER member_log_del AFTER DELETE ON member REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_deleted('2');
CREATE TRIGGER member_log_truncate BEFORE TRUNCATE ON member
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_truncated('2');

CREATE TRIGGER institution_log_ins AFTER INSERT ON institution REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_inserted('3');
CREATE TRIGGER institution_log AFTER UPDATE ON institution
    FOR EACH ROW EXECUTE FUNCTION record_log('3');
CREATE TRIGGER institution_log_del AFTER DELETE ON institution REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_deleted('3');
CREATE TRIGGER institution_log_truncate BEFORE TRUNCATE ON institution
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_truncated('3');

CREATE TRIGGER obstacle_log_ins AFTER INSERT ON obstacle REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_inserted('4');
CREATE TRIGGER obstacle_log AFTER UPDATE ON obstacle
    FOR EACH ROW EXECUTE FUNCTION record_log('4');
CREATE TRIGGER obstacle_log_del AFTER DELETE ON obstacle REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_deleted('4');
CREATE TRIGGER obstacle_log_truncate BEFORE TRUNCATE ON obstacle
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_truncated('4');

CREATE TRIGGER assistance_log_ins AFTER INSERT ON assistance REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_inserted('5');
CREATE TRIGGER assistance_log AFTER UPDATE ON assistance
    FOR EACH ROW EXECUTE FUNCTION record_log('5');
CREATE TRIGGER assistance_log_del AFTER DELETE ON assistance REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_deleted('5');
CREATE TRIGGER assistance_log_truncate BEFORE TRUNCATE ON assistance
    FOR EACH STATEMENT EXECUTE FUNCTION record_log_truncated('5');

-- ---------------------------------------------------------------- the sentra's changes

-- A sentra that is tombstoned takes its live records with it; one that
-- moves to another regency takes them there (record_parent copies the new
-- regency onto each row). Each record gets its own version and change row,
-- so every puller of the old regency gets a tombstone per record and every
-- puller of the new one the records (docs/SYNC.md). The sentra's row lock
-- is held by the statement that fired this.
CREATE FUNCTION sentra_records_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL THEN
        UPDATE member SET deleted_at = now(), updated_by = NEW.updated_by
         WHERE sentra_id = NEW.id AND deleted_at IS NULL;
        UPDATE obstacle SET deleted_at = now(), updated_by = NEW.updated_by
         WHERE sentra_id = NEW.id AND deleted_at IS NULL;
        UPDATE assistance SET deleted_at = now(), updated_by = NEW.updated_by
         WHERE sentra_id = NEW.id AND deleted_at IS NULL;
        UPDATE institution SET deleted_at = now(), updated_by = NEW.updated_by
         WHERE sentra_id = NEW.id AND deleted_at IS NULL;
    ELSIF NEW.deleted_at IS NULL THEN
        -- a move (the trigger's WHEN): record_parent writes the regency
        UPDATE member SET updated_by = NEW.updated_by
         WHERE sentra_id = NEW.id AND deleted_at IS NULL;
        UPDATE obstacle SET updated_by = NEW.updated_by
         WHERE sentra_id = NEW.id AND deleted_at IS NULL;
        UPDATE assistance SET updated_by = NEW.updated_by
         WHERE sentra_id = NEW.id AND deleted_at IS NULL;
        UPDATE institution SET updated_by = NEW.updated_by
         WHERE sentra_id = NEW.id AND deleted_at IS NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER sentra_records_follow AFTER UPDATE ON sentra
    FOR EACH ROW
    WHEN ((NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL)
          OR NEW.regency_code IS DISTINCT FROM OLD.regency_code)
    EXECUTE FUNCTION sentra_records_follow();

-- ---------------------------------------------------------------- statistics

-- Per sentra, what its statistics need of its records (docs/STATS.md), on
-- the sentra's own statistics row (sentra_stat, migrations/0005_stats.sql),
-- so that GetStatistics still reads one narrow row per sentra, joins
-- nothing, and never a million members: member records (live), members
-- that have not left by size class x owner's sex, the form of its live
-- institution, its live obstacles by status, its live assistance (count and
-- value). Kept by the statement triggers below, in the writing transaction,
-- under the sentra's row lock (record_parent, or sentra_lock_rows for
-- deletes), for every writer. The sentra's own triggers write the other
-- columns of the row and leave these alone (their upserts name their
-- columns); a new sentra starts at zero. Measured: joining a separate table
-- of these counts made a national GetStatistics three to five times slower
-- (a hash join of 20,000 rows against a scan of them).
ALTER TABLE sentra_stat
    ADD COLUMN member_rows           integer NOT NULL DEFAULT 0,
    ADD COLUMN small_male            integer NOT NULL DEFAULT 0,
    ADD COLUMN small_female          integer NOT NULL DEFAULT 0,
    ADD COLUMN medium_male           integer NOT NULL DEFAULT 0,
    ADD COLUMN medium_female         integer NOT NULL DEFAULT 0,
    ADD COLUMN large_male            integer NOT NULL DEFAULT 0,
    ADD COLUMN large_female          integer NOT NULL DEFAULT 0,
    ADD COLUMN institution_form      smallint,
    ADD COLUMN obstacles_open        integer NOT NULL DEFAULT 0,
    ADD COLUMN obstacles_in_progress integer NOT NULL DEFAULT 0,
    ADD COLUMN obstacles_resolved    integer NOT NULL DEFAULT 0,
    ADD COLUMN assistance_count      integer NOT NULL DEFAULT 0,
    -- numeric: a sum of values of up to 10^14 each must never fail a write
    ADD COLUMN assistance_value      numeric NOT NULL DEFAULT 0;

-- The same counts computed from the tables, for every sentra: what the
-- triggers keep, and what sentra_derived_drift compares with.
CREATE VIEW sentra_stat_records_src AS
SELECT s.id AS sentra_id,
       coalesce(m.member_rows, 0) AS member_rows,
       coalesce(m.small_male, 0) AS small_male, coalesce(m.small_female, 0) AS small_female,
       coalesce(m.medium_male, 0) AS medium_male, coalesce(m.medium_female, 0) AS medium_female,
       coalesce(m.large_male, 0) AS large_male, coalesce(m.large_female, 0) AS large_female,
       (SELECT i.form FROM institution i WHERE i.sentra_id = s.id AND i.deleted_at IS NULL)
           AS institution_form,
       coalesce(o.open, 0) AS obstacles_open, coalesce(o.in_progress, 0) AS obstacles_in_progress,
       coalesce(o.resolved, 0) AS obstacles_resolved,
       coalesce(a.n, 0) AS assistance_count, coalesce(a.value, 0) AS assistance_value
  FROM sentra s
  LEFT JOIN LATERAL (
       SELECT count(*)::int AS member_rows,
              count(*) FILTER (WHERE x.left_year IS NULL AND x.size_class = 1 AND x.owner_sex = 1)::int AS small_male,
              count(*) FILTER (WHERE x.left_year IS NULL AND x.size_class = 1 AND x.owner_sex = 2)::int AS small_female,
              count(*) FILTER (WHERE x.left_year IS NULL AND x.size_class = 2 AND x.owner_sex = 1)::int AS medium_male,
              count(*) FILTER (WHERE x.left_year IS NULL AND x.size_class = 2 AND x.owner_sex = 2)::int AS medium_female,
              count(*) FILTER (WHERE x.left_year IS NULL AND x.size_class = 3 AND x.owner_sex = 1)::int AS large_male,
              count(*) FILTER (WHERE x.left_year IS NULL AND x.size_class = 3 AND x.owner_sex = 2)::int AS large_female
         FROM member x WHERE x.sentra_id = s.id AND x.deleted_at IS NULL) m ON true
  LEFT JOIN LATERAL (
       SELECT count(*) FILTER (WHERE x.status = 1)::int AS open,
              count(*) FILTER (WHERE x.status = 2)::int AS in_progress,
              count(*) FILTER (WHERE x.status = 3)::int AS resolved
         FROM obstacle x WHERE x.sentra_id = s.id AND x.deleted_at IS NULL) o ON true
  LEFT JOIN LATERAL (
       SELECT count(*)::int AS n, coalesce(sum(x.value), 0) AS value
         FROM assistance x WHERE x.sentra_id = s.id AND x.deleted_at IS NULL) a ON true;

-- Recomputes the columns of one kind for the sentra p_ids (those that are
-- gone are skipped), after taking their row locks in id order. PL/pgSQL so
-- that the plans stay for the session; the list joins as a relation (a
-- generic plan of "= ANY" may scan a whole index).
CREATE FUNCTION record_stat_sync(p_kind smallint, p_ids uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(p_ids), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM sentra_lock_rows(p_ids);
    IF p_kind = 2 THEN
        UPDATE sentra_stat t SET member_rows = c.member_rows, small_male = c.small_male,
               small_female = c.small_female, medium_male = c.medium_male,
               medium_female = c.medium_female, large_male = c.large_male,
               large_female = c.large_female
          FROM (SELECT i.id, count(x.id)::int AS member_rows,
                       count(x.id) FILTER (WHERE x.left_year IS NULL AND x.size_class = 1 AND x.owner_sex = 1)::int AS small_male,
                       count(x.id) FILTER (WHERE x.left_year IS NULL AND x.size_class = 1 AND x.owner_sex = 2)::int AS small_female,
                       count(x.id) FILTER (WHERE x.left_year IS NULL AND x.size_class = 2 AND x.owner_sex = 1)::int AS medium_male,
                       count(x.id) FILTER (WHERE x.left_year IS NULL AND x.size_class = 2 AND x.owner_sex = 2)::int AS medium_female,
                       count(x.id) FILTER (WHERE x.left_year IS NULL AND x.size_class = 3 AND x.owner_sex = 1)::int AS large_male,
                       count(x.id) FILTER (WHERE x.left_year IS NULL AND x.size_class = 3 AND x.owner_sex = 2)::int AS large_female
                  FROM (SELECT DISTINCT u.id FROM unnest(p_ids) AS u(id)) i
                  LEFT JOIN member x ON x.sentra_id = i.id AND x.deleted_at IS NULL
                 GROUP BY i.id) c
         WHERE t.sentra_id = c.id;
    ELSIF p_kind = 3 THEN
        UPDATE sentra_stat t SET institution_form = x.form
          FROM (SELECT DISTINCT u.id FROM unnest(p_ids) AS u(id)) i
          LEFT JOIN institution x ON x.sentra_id = i.id AND x.deleted_at IS NULL
         WHERE t.sentra_id = i.id;
    ELSIF p_kind = 4 THEN
        UPDATE sentra_stat t SET obstacles_open = c.open, obstacles_in_progress = c.in_progress,
               obstacles_resolved = c.resolved
          FROM (SELECT i.id, count(x.id) FILTER (WHERE x.status = 1)::int AS open,
                       count(x.id) FILTER (WHERE x.status = 2)::int AS in_progress,
                       count(x.id) FILTER (WHERE x.status = 3)::int AS resolved
                  FROM (SELECT DISTINCT u.id FROM unnest(p_ids) AS u(id)) i
                  LEFT JOIN obstacle x ON x.sentra_id = i.id AND x.deleted_at IS NULL
                 GROUP BY i.id) c
         WHERE t.sentra_id = c.id;
    ELSE
        UPDATE sentra_stat t SET assistance_count = c.n, assistance_value = c.value
          FROM (SELECT i.id, count(x.id)::int AS n, coalesce(sum(x.value), 0) AS value
                  FROM (SELECT DISTINCT u.id FROM unnest(p_ids) AS u(id)) i
                  LEFT JOIN assistance x ON x.sentra_id = i.id AND x.deleted_at IS NULL
                 GROUP BY i.id) c
         WHERE t.sentra_id = c.id;
    END IF;
END $$;

CREATE FUNCTION record_stat_on_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM record_stat_sync(TG_ARGV[0]::smallint,
                             ARRAY(SELECT DISTINCT sentra_id FROM new_rows ORDER BY 1));
    RETURN NULL;
END $$;

CREATE FUNCTION record_stat_on_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM record_stat_sync(TG_ARGV[0]::smallint,
                             ARRAY(SELECT DISTINCT sentra_id FROM old_rows ORDER BY 1));
    RETURN NULL;
END $$;

CREATE FUNCTION record_stat_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_ARGV[0]
    WHEN '2' THEN
        UPDATE sentra_stat SET member_rows = 0, small_male = 0, small_female = 0,
               medium_male = 0, medium_female = 0, large_male = 0, large_female = 0
         WHERE member_rows <> 0;
    WHEN '3' THEN
        UPDATE sentra_stat SET institution_form = NULL WHERE institution_form IS NOT NULL;
    WHEN '4' THEN
        UPDATE sentra_stat SET obstacles_open = 0, obstacles_in_progress = 0, obstacles_resolved = 0
         WHERE obstacles_open + obstacles_in_progress + obstacles_resolved <> 0;
    ELSE
        UPDATE sentra_stat SET assistance_count = 0, assistance_value = 0 WHERE assistance_count <> 0;
    END CASE;
    RETURN NULL;
END $$;

CREATE TRIGGER member_stat_ins AFTER INSERT ON member REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_new('2');
CREATE TRIGGER member_stat_upd AFTER UPDATE ON member REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_new('2');
CREATE TRIGGER member_stat_del AFTER DELETE ON member REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_old('2');
CREATE TRIGGER member_stat_truncate AFTER TRUNCATE ON member
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_truncate('2');
CREATE TRIGGER institution_stat_ins AFTER INSERT ON institution REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_new('3');
CREATE TRIGGER institution_stat_upd AFTER UPDATE ON institution REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_new('3');
CREATE TRIGGER institution_stat_del AFTER DELETE ON institution REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_old('3');
CREATE TRIGGER institution_stat_truncate AFTER TRUNCATE ON institution
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_truncate('3');
CREATE TRIGGER obstacle_stat_ins AFTER INSERT ON obstacle REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_new('4');
CREATE TRIGGER obstacle_stat_upd AFTER UPDATE ON obstacle REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_new('4');
CREATE TRIGGER obstacle_stat_del AFTER DELETE ON obstacle REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_old('4');
CREATE TRIGGER obstacle_stat_truncate AFTER TRUNCATE ON obstacle
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_truncate('4');
CREATE TRIGGER assistance_stat_ins AFTER INSERT ON assistance REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_new('5');
CREATE TRIGGER assistance_stat_upd AFTER UPDATE ON assistance REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_new('5');
CREATE TRIGGER assistance_stat_del AFTER DELETE ON assistance REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_old('5');
CREATE TRIGGER assistance_stat_truncate AFTER TRUNCATE ON assistance
    FOR EACH STATEMENT EXECUTE FUNCTION record_stat_on_truncate('5');

-- sentra_derived_drift (migrations/0009_integrity.sql), now that sentra_stat
-- also holds the counts of the records: its sentra columns against
-- sentra_stat_src as before, its record columns against
-- sentra_stat_records_src ('sentra_stat records').
CREATE OR REPLACE FUNCTION sentra_derived_drift()
RETURNS TABLE (sentra_id uuid, derived text)
LANGUAGE sql STABLE SET extra_float_digits = 1 AS $$
    WITH st AS (
        SELECT t.sentra_id, t.regency_code, t.province_code, t.status, t.sector_group, t.kbli_code,
               t.designated, t.formed_on, t.decree_date, t.updated_at, t.deleted_at, t.fig_year,
               t.business_units, t.workers_male, t.workers_female, t.investment,
               t.production_value, t.material_value
          FROM sentra_stat t)
    SELECT d.sentra_id, 'sentra_stat' FROM (
        (SELECT * FROM st EXCEPT ALL SELECT * FROM sentra_stat_src)
        UNION
        (SELECT * FROM sentra_stat_src EXCEPT ALL SELECT * FROM st)) d
    UNION
    SELECT d.sentra_id, 'sentra_pull' FROM (
        (SELECT * FROM sentra_pull EXCEPT ALL SELECT * FROM sentra_pull_src)
        UNION
        (SELECT * FROM sentra_pull_src EXCEPT ALL SELECT * FROM sentra_pull)) d
    UNION
    SELECT d.sentra_id, 'sentra_stat records' FROM (
        (SELECT t.sentra_id, t.member_rows, t.small_male, t.small_female, t.medium_male,
                t.medium_female, t.large_male, t.large_female, t.institution_form,
                t.obstacles_open, t.obstacles_in_progress, t.obstacles_resolved,
                t.assistance_count, t.assistance_value FROM sentra_stat t
         EXCEPT ALL SELECT * FROM sentra_stat_records_src)
        UNION
        (SELECT * FROM sentra_stat_records_src
         EXCEPT ALL SELECT t.sentra_id, t.member_rows, t.small_male, t.small_female, t.medium_male,
                t.medium_female, t.large_male, t.large_female, t.institution_form,
                t.obstacles_open, t.obstacles_in_progress, t.obstacles_resolved,
                t.assistance_count, t.assistance_value FROM sentra_stat t)) d
$$;

-- ---------------------------------------------------------------- reading

-- The records as the service sends them: one column per field of the
-- message, named by its path ('.' as '_'), in the message's field order
-- (server/services/records.c reads them by that rule and checks the names
-- of every result). Enumerations as proto numbers (kbli_version as the
-- year, which records.c turns into KbliVersion), dates as YYYY-MM-DD,
-- times as Unix milliseconds, id lists joined by commas.
CREATE VIEW member_api AS
SELECT m.id, m.sentra_id, m.name, m.owner_name, m.owner_sex, m.nib, m.kbli_code,
       m.kbli_version, m.products, m.workers_male, m.workers_female, m.investment,
       m.production_value, m.joined_year, m.left_year, m.size_class, m.version,
       (extract(epoch FROM m.created_at) * 1000)::bigint AS created_at_ms,
       (extract(epoch FROM m.updated_at) * 1000)::bigint AS updated_at_ms,
       m.created_by, m.updated_by, m.regency_code, m.province_code,
       m.deleted_at IS NOT NULL AS deleted
  FROM member m;

CREATE VIEW institution_api AS
SELECT i.sentra_id, i.form, i.legal_basis, i.registration_number, i.board_chair,
       i.board_secretary, i.board_treasurer, i.facility_name, i.facility_provides,
       i.facility_condition, i.version,
       (extract(epoch FROM i.created_at) * 1000)::bigint AS created_at_ms,
       (extract(epoch FROM i.updated_at) * 1000)::bigint AS updated_at_ms,
       i.created_by, i.updated_by, i.regency_code, i.province_code,
       i.deleted_at IS NOT NULL AS deleted
  FROM institution i;

CREATE VIEW obstacle_api AS
SELECT o.id, o.sentra_id, o.category, o.description, o.severity,
       to_char(o.reported_on, 'YYYY-MM-DD') AS reported_on, o.status, o.resolution,
       to_char(o.resolved_on, 'YYYY-MM-DD') AS resolved_on, o.assistance_id, o.version,
       (extract(epoch FROM o.created_at) * 1000)::bigint AS created_at_ms,
       (extract(epoch FROM o.updated_at) * 1000)::bigint AS updated_at_ms,
       o.created_by, o.updated_by, o.regency_code, o.province_code,
       o.deleted_at IS NOT NULL AS deleted
  FROM obstacle o;

CREATE VIEW assistance_api AS
SELECT a.id, a.sentra_id, a.kind, a.certification, a.provider, a.provider_name,
       a.programme, a.year, a.value,
       array_to_string(a.recipient_member_ids, ',') AS recipient_member_ids, a.version,
       (extract(epoch FROM a.created_at) * 1000)::bigint AS created_at_ms,
       (extract(epoch FROM a.updated_at) * 1000)::bigint AS updated_at_ms,
       a.created_by, a.updated_by, a.regency_code, a.province_code,
       a.deleted_at IS NOT NULL AS deleted
  FROM assistance a;

-- The same records printed as one text each, for PullChanges: the columns
-- of the view above in its order, '' for NULL, separated by U+001F (no
-- text column can hold it: the text rule of migrations/0010_text_rules.sql).
-- server/services/records.c rec__from_packed reads it; the tests check
-- that a pulled record equals the same record read by Get*.
CREATE VIEW member_pull_src AS
SELECT a.id, a.regency_code, a.version, a.deleted,
       format(replace('%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s',
                      ' ', E'\x1f'),
              a.id, a.sentra_id, a.name, a.owner_name, a.owner_sex, a.nib, a.kbli_code,
              a.kbli_version, a.products, a.workers_male, a.workers_female, a.investment,
              a.production_value, a.joined_year, a.left_year, a.size_class, a.version,
              a.created_at_ms, a.updated_at_ms, a.created_by, a.updated_by, a.regency_code,
              a.province_code, a.deleted) AS packed
  FROM member_api a;

CREATE VIEW institution_pull_src AS
SELECT a.sentra_id AS id, a.regency_code, a.version, a.deleted,
       format(replace('%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s', ' ', E'\x1f'),
              a.sentra_id, a.form, a.legal_basis, a.registration_number, a.board_chair,
              a.board_secretary, a.board_treasurer, a.facility_name, a.facility_provides,
              a.facility_condition, a.version, a.created_at_ms, a.updated_at_ms,
              a.created_by, a.updated_by, a.regency_code, a.province_code, a.deleted) AS packed
  FROM institution_api a;

CREATE VIEW obstacle_pull_src AS
SELECT a.id, a.regency_code, a.version, a.deleted,
       format(replace('%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s', ' ', E'\x1f'),
              a.id, a.sentra_id, a.category, a.description, a.severity, a.reported_on,
              a.status, a.resolution, a.resolved_on, a.assistance_id, a.version,
              a.created_at_ms, a.updated_at_ms, a.created_by, a.updated_by,
              a.regency_code, a.province_code, a.deleted) AS packed
  FROM obstacle_api a;

CREATE VIEW assistance_pull_src AS
SELECT a.id, a.regency_code, a.version, a.deleted,
       format(replace('%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s', ' ', E'\x1f'),
              a.id, a.sentra_id, a.kind, a.certification, a.provider, a.provider_name,
              a.programme, a.year, a.value, a.recipient_member_ids, a.version,
              a.created_at_ms, a.updated_at_ms, a.created_by, a.updated_by,
              a.regency_code, a.province_code, a.deleted) AS packed
  FROM assistance_api a;

-- ---------------------------------------------------------------- writing

-- The write functions of RecordService (server/services/handlers_records.c),
-- one call per request, and of PushChanges (sync_apply below). p_rec: the
-- record as a JSON object keyed by column name (records.c rec__json), its
-- writable fields only. Errors as for sentra (migrations/0004): SE003 with
-- "field: reason" lines, SE005 NOT_FOUND, SE007 PERMISSION_DENIED, SE010
-- ABORTED with the current version, 23505 ALREADY_EXISTS.

CREATE FUNCTION record_table(p_kind smallint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind WHEN 2 THEN 'member' WHEN 3 THEN 'institution'
                       WHEN 4 THEN 'obstacle' WHEN 5 THEN 'assistance' END
$$;

-- The key column of a kind's table (an institution's is its sentra).
CREATE FUNCTION record_key(p_kind smallint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_kind WHEN 3 THEN 'sentra_id' ELSE 'id' END
$$;

-- The sentra of a new record, for a write by (role, region): locked, live
-- (else sentra_id is refused), inside the token's scope (else
-- PERMISSION_DENIED, as any write outside it). Returns its regency.
CREATE FUNCTION record_parent_for_write(p_role text, p_region text, p_sentra uuid) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    reg text;
BEGIN
    IF p_sentra IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003', MESSAGE = 'no sentra',
            DETAIL = 'sentra_id: is required';
    END IF;
    reg := record_parent(p_sentra, false, false);
    IF NOT sentra_can_write(p_role, p_region, reg) THEN
        RAISE EXCEPTION USING ERRCODE = 'SE007',
            MESSAGE = format('a %s token for %s may not write the records of sentra %s',
                             p_role, coalesce(nullif(p_region, ''), 'the country'), p_sentra);
    END IF;
    RETURN reg;
END $$;

-- A live record for an update or delete by (role, region), locked after
-- its sentra (the order a move takes, so that the service's writers never
-- deadlock with one another): a record the token cannot read, or a
-- tombstone, is NOT_FOUND; one it can read but not write PERMISSION_DENIED;
-- another version than p_expected ABORTED with the current one. The kind's
-- table is named by p_kind; the two lookups are key probes.
CREATE FUNCTION record_lock_for_write(p_kind smallint, p_role text, p_region text,
                                      p_id uuid, p_expected bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    tbl text := record_table(p_kind);
    key text := record_key(p_kind);
    sid uuid;
    reg text;
    ver bigint;
    gone timestamptz;
BEGIN
    EXECUTE format('SELECT sentra_id FROM %I WHERE %I = $1', tbl, key) INTO sid USING p_id;
    IF sid IS NOT NULL THEN
        PERFORM 1 FROM sentra s WHERE s.id = sid FOR NO KEY UPDATE;
        EXECUTE format('SELECT regency_code, version, deleted_at FROM %I WHERE %I = $1 FOR UPDATE',
                       tbl, key)
           INTO reg, ver, gone USING p_id;
    END IF;
    IF sid IS NULL OR gone IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'SE005', MESSAGE = format('no %s %s', tbl, p_id);
    END IF;
    -- Writes outside the scope are PERMISSION_DENIED, even for records the
    -- token cannot read (reads of them stay NOT_FOUND), as for sentra.
    IF NOT sentra_can_write(p_role, p_region, reg) THEN
        RAISE EXCEPTION USING ERRCODE = 'SE007',
            MESSAGE = format('a %s token may not change %s %s', p_role, tbl, p_id);
    END IF;
    IF ver <> p_expected THEN
        RAISE EXCEPTION USING ERRCODE = 'SE010',
            MESSAGE = format('%s %s is at version %s, not %s', tbl, p_id, ver, p_expected),
            DETAIL = ver::text;
    END IF;
END $$;

-- Idempotency keys (sentra_idem_claim, migrations/0004_sentra_functions.sql)
-- name the methods "<kind>.<write>" ("member.create"); idempotency.sentra_id
-- holds the id of the record the first write produced. A repeat answers the
-- record as it is now, if the token may still read it.

CREATE FUNCTION member_create(p_token uuid, p_role text, p_region text, p_idem text, p_rec jsonb)
RETURNS SETOF member_api LANGUAGE plpgsql AS $$
DECLARE
    r member;
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'member.create');
        IF prior IS NOT NULL THEN
            RETURN QUERY SELECT * FROM member_api a WHERE a.id = prior AND NOT a.deleted
                AND sentra_can_read(p_role, p_region, a.regency_code, a.province_code);
            RETURN;
        END IF;
    END IF;
    r := jsonb_populate_record(NULL::member, p_rec);
    PERFORM record_parent_for_write(p_role, p_region, r.sentra_id);
    r.id := coalesce(r.id, gen_random_uuid());
    IF EXISTS (SELECT 1 FROM member m WHERE m.id = r.id)
       OR EXISTS (SELECT 1 FROM record_purged p WHERE p.kind = 2 AND p.id = r.id) THEN
        RAISE EXCEPTION USING ERRCODE = '23505',
            MESSAGE = format('a member with id %s already exists', r.id);
    END IF;
    INSERT INTO member (id, sentra_id, regency_code, name, owner_name, owner_sex, nib,
                        kbli_code, kbli_version, products, workers_male, workers_female,
                        investment, production_value, joined_year, left_year,
                        created_by, updated_by)
    VALUES (r.id, r.sentra_id, '', r.name, r.owner_name, r.owner_sex, r.nib,
            r.kbli_code, r.kbli_version, coalesce(r.products, ''),
            coalesce(r.workers_male, 0), coalesce(r.workers_female, 0),
            coalesce(r.investment, 0), coalesce(r.production_value, 0),
            r.joined_year, r.left_year, p_token, p_token);
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency SET sentra_id = r.id, version = 1
         WHERE token_id = p_token AND key = p_idem;
    END IF;
    RETURN QUERY SELECT * FROM member_api a WHERE a.id = r.id;
END $$;

-- p_mask: the column names to change (records.c checks them: writable
-- fields only); the rest stays as stored.
CREATE FUNCTION member_update(p_token uuid, p_role text, p_region text, p_idem text,
                              p_id uuid, p_expected bigint, p_mask text[], p_rec jsonb)
RETURNS SETOF member_api LANGUAGE plpgsql AS $$
DECLARE
    r member;
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'member.update');
        IF prior IS NOT NULL THEN
            RETURN QUERY SELECT * FROM member_api a WHERE a.id = prior AND NOT a.deleted
                AND sentra_can_read(p_role, p_region, a.regency_code, a.province_code);
            RETURN;
        END IF;
    END IF;
    PERFORM record_lock_for_write(2::smallint, p_role, p_region, p_id, p_expected);
    SELECT * INTO r FROM member m WHERE m.id = p_id;
    r := jsonb_populate_record(r, (SELECT coalesce(jsonb_object_agg(key, value), '{}')
                                     FROM jsonb_each(p_rec) WHERE key = ANY (p_mask)));
    UPDATE member SET sentra_id = r.sentra_id, name = r.name, owner_name = r.owner_name, owner_sex = r.owner_sex,
           nib = r.nib, kbli_code = r.kbli_code, kbli_version = r.kbli_version,
           products = coalesce(r.products, ''), workers_male = coalesce(r.workers_male, 0),
           workers_female = coalesce(r.workers_female, 0),
           investment = coalesce(r.investment, 0),
           production_value = coalesce(r.production_value, 0),
           joined_year = r.joined_year, left_year = r.left_year,
           version = p_expected + 1, updated_at = now(), updated_by = p_token
     WHERE id = p_id;
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency SET sentra_id = p_id, version = p_expected + 1
         WHERE token_id = p_token AND key = p_idem;
    END IF;
    RETURN QUERY SELECT * FROM member_api a WHERE a.id = p_id;
END $$;

-- Delete of a record of any kind but sentra: a tombstone. Returns the
-- record's key and the tombstone's version.
CREATE FUNCTION record_delete(p_kind smallint, p_token uuid, p_role text, p_region text,
                              p_idem text, p_id uuid, p_expected bigint)
RETURNS TABLE (id uuid, version bigint) LANGUAGE plpgsql AS $$
DECLARE
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, record_table(p_kind) || '.delete');
        IF prior IS NOT NULL THEN
            RETURN QUERY SELECT i.sentra_id, i.version FROM idempotency i
                          WHERE i.token_id = p_token AND i.key = p_idem;
            RETURN;
        END IF;
    END IF;
    PERFORM record_lock_for_write(p_kind, p_role, p_region, p_id, p_expected);
    EXECUTE format('UPDATE %I SET deleted_at = now(), version = $1 + 1, updated_at = now(),'
                   ' updated_by = $2 WHERE %I = $3', record_table(p_kind), record_key(p_kind))
        USING p_expected, p_token, p_id;
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency i SET sentra_id = p_id, version = p_expected + 1
         WHERE i.token_id = p_token AND i.key = p_idem;
    END IF;
    RETURN QUERY SELECT p_id, p_expected + 1;
END $$;

CREATE FUNCTION obstacle_create(p_token uuid, p_role text, p_region text, p_idem text, p_rec jsonb)
RETURNS SETOF obstacle_api LANGUAGE plpgsql AS $$
DECLARE
    r obstacle;
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'obstacle.create');
        IF prior IS NOT NULL THEN
            RETURN QUERY SELECT * FROM obstacle_api a WHERE a.id = prior AND NOT a.deleted
                AND sentra_can_read(p_role, p_region, a.regency_code, a.province_code);
            RETURN;
        END IF;
    END IF;
    r := jsonb_populate_record(NULL::obstacle, p_rec);
    PERFORM record_parent_for_write(p_role, p_region, r.sentra_id);
    r.id := coalesce(r.id, gen_random_uuid());
    IF EXISTS (SELECT 1 FROM obstacle o WHERE o.id = r.id)
       OR EXISTS (SELECT 1 FROM record_purged p WHERE p.kind = 4 AND p.id = r.id) THEN
        RAISE EXCEPTION USING ERRCODE = '23505',
            MESSAGE = format('an obstacle with id %s already exists', r.id);
    END IF;
    INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity,
                          reported_on, status, resolution, resolved_on, assistance_id,
                          created_by, updated_by)
    VALUES (r.id, r.sentra_id, '', r.category, r.description, r.severity, r.reported_on,
            r.status, coalesce(r.resolution, ''), r.resolved_on, r.assistance_id,
            p_token, p_token);
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency SET sentra_id = r.id, version = 1
         WHERE token_id = p_token AND key = p_idem;
    END IF;
    RETURN QUERY SELECT * FROM obstacle_api a WHERE a.id = r.id;
END $$;

CREATE FUNCTION obstacle_update(p_token uuid, p_role text, p_region text, p_idem text,
                                p_id uuid, p_expected bigint, p_mask text[], p_rec jsonb)
RETURNS SETOF obstacle_api LANGUAGE plpgsql AS $$
DECLARE
    r obstacle;
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'obstacle.update');
        IF prior IS NOT NULL THEN
            RETURN QUERY SELECT * FROM obstacle_api a WHERE a.id = prior AND NOT a.deleted
                AND sentra_can_read(p_role, p_region, a.regency_code, a.province_code);
            RETURN;
        END IF;
    END IF;
    PERFORM record_lock_for_write(4::smallint, p_role, p_region, p_id, p_expected);
    SELECT * INTO r FROM obstacle o WHERE o.id = p_id;
    r := jsonb_populate_record(r, (SELECT coalesce(jsonb_object_agg(key, value), '{}')
                                     FROM jsonb_each(p_rec) WHERE key = ANY (p_mask)));
    UPDATE obstacle SET sentra_id = r.sentra_id, category = r.category, description = r.description,
           severity = r.severity, reported_on = r.reported_on, status = r.status,
           resolution = coalesce(r.resolution, ''), resolved_on = r.resolved_on,
           assistance_id = r.assistance_id,
           version = p_expected + 1, updated_at = now(), updated_by = p_token
     WHERE id = p_id;
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency SET sentra_id = p_id, version = p_expected + 1
         WHERE token_id = p_token AND key = p_idem;
    END IF;
    RETURN QUERY SELECT * FROM obstacle_api a WHERE a.id = p_id;
END $$;

CREATE FUNCTION assistance_create(p_token uuid, p_role text, p_region text, p_idem text, p_rec jsonb)
RETURNS SETOF assistance_api LANGUAGE plpgsql AS $$
DECLARE
    r assistance;
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'assistance.create');
        IF prior IS NOT NULL THEN
            RETURN QUERY SELECT * FROM assistance_api a WHERE a.id = prior AND NOT a.deleted
                AND sentra_can_read(p_role, p_region, a.regency_code, a.province_code);
            RETURN;
        END IF;
    END IF;
    r := jsonb_populate_record(NULL::assistance, p_rec);
    PERFORM record_parent_for_write(p_role, p_region, r.sentra_id);
    r.id := coalesce(r.id, gen_random_uuid());
    IF EXISTS (SELECT 1 FROM assistance x WHERE x.id = r.id)
       OR EXISTS (SELECT 1 FROM record_purged p WHERE p.kind = 5 AND p.id = r.id) THEN
        RAISE EXCEPTION USING ERRCODE = '23505',
            MESSAGE = format('an assistance record with id %s already exists', r.id);
    END IF;
    INSERT INTO assistance (id, sentra_id, regency_code, kind, certification, provider,
                            provider_name, programme, year, value, recipient_member_ids,
                            created_by, updated_by)
    VALUES (r.id, r.sentra_id, '', r.kind, r.certification, r.provider,
            coalesce(r.provider_name, ''), r.programme, r.year, coalesce(r.value, 0),
            coalesce(r.recipient_member_ids, '{}'), p_token, p_token);
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency SET sentra_id = r.id, version = 1
         WHERE token_id = p_token AND key = p_idem;
    END IF;
    RETURN QUERY SELECT * FROM assistance_api a WHERE a.id = r.id;
END $$;

CREATE FUNCTION assistance_update(p_token uuid, p_role text, p_region text, p_idem text,
                                  p_id uuid, p_expected bigint, p_mask text[], p_rec jsonb)
RETURNS SETOF assistance_api LANGUAGE plpgsql AS $$
DECLARE
    r assistance;
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'assistance.update');
        IF prior IS NOT NULL THEN
            RETURN QUERY SELECT * FROM assistance_api a WHERE a.id = prior AND NOT a.deleted
                AND sentra_can_read(p_role, p_region, a.regency_code, a.province_code);
            RETURN;
        END IF;
    END IF;
    PERFORM record_lock_for_write(5::smallint, p_role, p_region, p_id, p_expected);
    SELECT * INTO r FROM assistance x WHERE x.id = p_id;
    r := jsonb_populate_record(r, (SELECT coalesce(jsonb_object_agg(key, value), '{}')
                                     FROM jsonb_each(p_rec) WHERE key = ANY (p_mask)));
    UPDATE assistance SET sentra_id = r.sentra_id, kind = r.kind, certification = r.certification,
           provider = r.provider, provider_name = coalesce(r.provider_name, ''),
           programme = r.programme, year = r.year, value = coalesce(r.value, 0),
           recipient_member_ids = coalesce(r.recipient_member_ids, '{}'),
           version = p_expected + 1, updated_at = now(), updated_by = p_token
     WHERE id = p_id;
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency SET sentra_id = p_id, version = p_expected + 1
         WHERE token_id = p_token AND key = p_idem;
    END IF;
    RETURN QUERY SELECT * FROM assistance_api a WHERE a.id = p_id;
END $$;

-- SetInstitution: creates the institution of a sentra, brings a tombstone
-- back (at its version + 1), or replaces a live one at p_expected. A sentra
-- with none (or only a tombstone) is at "version 0" for p_expected.
CREATE FUNCTION institution_set(p_token uuid, p_role text, p_region text, p_idem text,
                                p_rec jsonb, p_expected bigint)
RETURNS SETOF institution_api LANGUAGE plpgsql AS $$
DECLARE
    r institution;
    cur institution;
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'institution.set');
        IF prior IS NOT NULL THEN
            RETURN QUERY SELECT * FROM institution_api a WHERE a.sentra_id = prior AND NOT a.deleted
                AND sentra_can_read(p_role, p_region, a.regency_code, a.province_code);
            RETURN;
        END IF;
    END IF;
    r := jsonb_populate_record(NULL::institution, p_rec);
    PERFORM record_parent_for_write(p_role, p_region, r.sentra_id);
    SELECT * INTO cur FROM institution i WHERE i.sentra_id = r.sentra_id FOR UPDATE;
    IF NOT FOUND OR cur.deleted_at IS NOT NULL THEN
        IF p_expected <> 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'SE010',
                MESSAGE = format('sentra %s has no institution (expected version 0, not %s)',
                                 r.sentra_id, p_expected),
                DETAIL = '0';
        END IF;
    ELSIF cur.version <> p_expected THEN
        RAISE EXCEPTION USING ERRCODE = 'SE010',
            MESSAGE = format('the institution of sentra %s is at version %s, not %s',
                             r.sentra_id, cur.version, p_expected),
            DETAIL = cur.version::text;
    END IF;
    IF cur.sentra_id IS NULL THEN
        INSERT INTO institution (sentra_id, regency_code, form, legal_basis, registration_number,
                                 board_chair, board_secretary, board_treasurer, facility_name,
                                 facility_provides, facility_condition, created_by, updated_by)
        VALUES (r.sentra_id, '', r.form, coalesce(r.legal_basis, ''),
                coalesce(r.registration_number, ''), coalesce(r.board_chair, ''),
                coalesce(r.board_secretary, ''), coalesce(r.board_treasurer, ''),
                coalesce(r.facility_name, ''), coalesce(r.facility_provides, ''),
                r.facility_condition, p_token, p_token);
    ELSE
        UPDATE institution SET form = r.form, legal_basis = coalesce(r.legal_basis, ''),
               registration_number = coalesce(r.registration_number, ''),
               board_chair = coalesce(r.board_chair, ''),
               board_secretary = coalesce(r.board_secretary, ''),
               board_treasurer = coalesce(r.board_treasurer, ''),
               facility_name = coalesce(r.facility_name, ''),
               facility_provides = coalesce(r.facility_provides, ''),
               facility_condition = r.facility_condition,
               -- a tombstone brought back is a new institution
               created_at = CASE WHEN cur.deleted_at IS NULL THEN cur.created_at ELSE now() END,
               created_by = CASE WHEN cur.deleted_at IS NULL THEN cur.created_by ELSE p_token END,
               deleted_at = NULL,
               version = cur.version + 1, updated_at = now(), updated_by = p_token
         WHERE sentra_id = r.sentra_id;
    END IF;
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency SET sentra_id = r.sentra_id,
               version = (SELECT i.version FROM institution i WHERE i.sentra_id = r.sentra_id)
         WHERE token_id = p_token AND key = p_idem;
    END IF;
    RETURN QUERY SELECT * FROM institution_api a WHERE a.sentra_id = r.sentra_id;
END $$;

CREATE FUNCTION institution_delete(p_token uuid, p_role text, p_region text, p_idem text,
                                   p_sentra uuid, p_expected bigint)
RETURNS TABLE (id uuid, version bigint) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT * FROM record_delete(3::smallint, p_token, p_role, p_region, p_idem,
                                             p_sentra, p_expected);
END $$;

-- ---------------------------------------------------------------- sync: push

-- Pushed mutations of every kind (docs/SYNC.md, "Several kinds of record").
-- A mutation of another kind than sentra is, in the batch JSON of
-- sync_push, an object with "kind" (2..5), "id" (the record's key: an
-- institution's sentra id) and "rec" (the record as the write functions
-- above take it: every writable field, so an upsert of a known record
-- replaces all of them). sync_mutation remembers the kind of each outcome,
-- for the record a replayed CONFLICT shows.
ALTER TABLE sync_mutation ADD COLUMN kind smallint NOT NULL DEFAULT 1 CHECK (kind BETWEEN 1 AND 5);
ALTER TYPE sync_result ADD ATTRIBUTE kind smallint;

-- The outcome of a failed write of record p_id of kind p_kind: a conflict
-- (with the record to show) when the token may read the record, tombstone
-- or not, else a rejection that does not reveal it.
CREATE FUNCTION record_conflict_or_reject(p_kind smallint, p_role text, p_region text,
                                          p_id uuid, p_reason text)
RETURNS sync_result LANGUAGE plpgsql STABLE AS $$
DECLARE
    r sync_result;
    reg text;
BEGIN
    EXECUTE format('SELECT regency_code FROM %I WHERE %I = $1', record_table(p_kind),
                   record_key(p_kind)) INTO reg USING p_id;
    r.kind := p_kind;
    IF reg IS NOT NULL AND sentra_can_read(p_role, p_region, reg, split_part(reg, '.', 1)) THEN
        r.outcome := 2;
        r.sentra_id := p_id;
    ELSE
        r.outcome := 3;
        r.violations := record_table(p_kind) || '.' || record_key(p_kind) || ': ' || p_reason;
    END IF;
    RETURN r;
END $$;

-- One mutation of a record of kind 2..5, in a subtransaction of its own
-- (as sync_apply does for sentra). Field paths of violations start with
-- the kind ("member.nib").
CREATE FUNCTION record_apply(p_token uuid, p_role text, p_region text, m jsonb)
RETURNS sync_result LANGUAGE plpgsql AS $$
DECLARE
    r sync_result;
    k smallint := (m ->> 'kind')::smallint;
    tbl text := record_table((m ->> 'kind')::smallint);
    v_id uuid := (m ->> 'id')::uuid;
    base bigint := coalesce((m ->> 'base')::bigint, 0);
    rec jsonb := coalesce(m -> 'rec', '{}');
    mask text[] := ARRAY(SELECT jsonb_object_keys(coalesce(m -> 'rec', '{}')));
    st text;
    msg text;
    det text;
BEGIN
    r.sentra_id := v_id;
    r.kind := k;
    BEGIN
        IF (m ->> 'op')::int = 2 THEN
            SELECT d.version INTO r.version
              FROM record_delete(k, p_token, p_role, p_region, NULL, v_id, base) d;
        ELSIF k = 3 THEN
            SELECT a.version INTO r.version
              FROM institution_set(p_token, p_role, p_region, NULL, rec, base) a;
        ELSIF base = 0 THEN
            CASE k
            WHEN 2 THEN SELECT a.version INTO r.version FROM member_create(p_token, p_role, p_region, NULL, rec) a;
            WHEN 4 THEN SELECT a.version INTO r.version FROM obstacle_create(p_token, p_role, p_region, NULL, rec) a;
            ELSE SELECT a.version INTO r.version FROM assistance_create(p_token, p_role, p_region, NULL, rec) a;
            END CASE;
        ELSE
            CASE k
            WHEN 2 THEN SELECT a.version INTO r.version
                          FROM member_update(p_token, p_role, p_region, NULL, v_id, base, mask, rec) a;
            WHEN 4 THEN SELECT a.version INTO r.version
                          FROM obstacle_update(p_token, p_role, p_region, NULL, v_id, base, mask, rec) a;
            ELSE SELECT a.version INTO r.version
                          FROM assistance_update(p_token, p_role, p_region, NULL, v_id, base, mask, rec) a;
            END CASE;
        END IF;
        SET CONSTRAINTS ALL IMMEDIATE;
        SET CONSTRAINTS ALL DEFERRED;
        r.outcome := 1;
    EXCEPTION
        WHEN SQLSTATE 'SE003' OR integrity_constraint_violation OR data_exception
             OR SQLSTATE 'SE005' OR SQLSTATE 'SE007' OR SQLSTATE 'SE010' THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
        r.version := NULL;
        IF st = 'SE003' THEN
            r.outcome := 3;
            r.violations := regexp_replace(coalesce(nullif(det, ''), msg), '^', tbl || '.', 'gn');
        ELSIF st = 'SE010' THEN
            r.outcome := 2;                     -- the version moved on
        ELSIF st = 'SE005' THEN
            r := record_conflict_or_reject(k, p_role, p_region, v_id,
                                           'no ' || tbl || ' with this id in your region');
        ELSIF st = 'SE007' THEN
            r.outcome := 3;
            r.violations := tbl || '.sentra_id: ' || msg;
        ELSIF st = '23505' THEN
            r := record_conflict_or_reject(k, p_role, p_region, v_id,
                                           'is already used by another ' || tbl);
        ELSE
            -- a rule the service's checks missed (PostgreSQL's own words go
            -- to no client: the server logs what it sees, here nothing)
            r.outcome := 3;
            r.violations := tbl || ': breaks a rule of the registry';
        END IF;
        r.kind := k;
        r.sentra_id := v_id;
    END;
    RETURN r;
END $$;

-- The record of a CONFLICT of kind 2..5 as the caller may read it now (the
-- text a pull sends), or NULL: then a tombstone at the version returned.
CREATE FUNCTION record_shown(p_kind smallint, p_role text, p_region text, p_id uuid,
                             OUT packed text, OUT version bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    reg text;
    gone boolean;
BEGIN
    IF p_kind IS NULL OR p_kind NOT BETWEEN 2 AND 5 OR p_id IS NULL THEN
        RETURN;                 -- a sentra's (sync_push shows it otherwise), or none
    END IF;
    EXECUTE format('SELECT p.regency_code, p.version, p.deleted, p.packed FROM %I p WHERE p.id = $1',
                   record_table(p_kind) || '_pull_src')
       INTO reg, version, gone, packed USING p_id;
    IF reg IS NULL THEN
        SELECT p.version INTO version FROM record_purged p WHERE p.kind = p_kind AND p.id = p_id;
        packed := NULL;
    ELSIF gone OR NOT sentra_can_read(p_role, p_region, reg, split_part(reg, '.', 1)) THEN
        packed := NULL;
    END IF;
END $$;

-- sync_push of migrations/0009_integrity.sql, for every kind: mutations of
-- other kinds go to record_apply, their outcomes are stored with their
-- kind, and a CONFLICT of such a record comes with the record as the
-- caller may read it (rec_packed, as a pull prints it) or its tombstone
-- (rec_packed NULL, rec_version). The set-wise path stays for batches of
-- new sentra only. A repeat returns the stored outcome, as before.
DROP FUNCTION sync_push(uuid, text, text, text, boolean, jsonb);
CREATE FUNCTION sync_push(p_token uuid, p_role text, p_region text, p_client text,
                          p_atomic boolean, p_batch jsonb)
RETURNS TABLE (rec sentra_rows, idx int, outcome smallint, version bigint,
               violations text, kind smallint, rec_packed text, rec_version bigint)
LANGUAGE plpgsql AS $$
DECLARE
    res sync_result[] := '{}';
    r sync_result;
    m jsonb;
    i int := 0;
    mid text;
    failed int := -1;
    failed_mid text;
BEGIN
    IF jsonb_typeof(p_batch) <> 'array' OR jsonb_array_length(p_batch) > 500 THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003', MESSAGE = 'invalid batch',
            DETAIL = 'mutations: at most 500 per push';
    END IF;
    IF random() < 0.01 THEN
        DELETE FROM sync_mutation WHERE created_at < now() - interval '30 days';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_batch) AS x(e) WHERE e ? 'kind')
       AND sync_push_new_records(p_token, p_role, p_region, p_client, p_batch) THEN
        RETURN QUERY
            SELECT NULL::sentra_rows, (x.o - 1)::int, 1::smallint, 1::bigint, NULL::text,
                   1::smallint, NULL::text, NULL::bigint
              FROM jsonb_array_elements(p_batch) WITH ORDINALITY AS x(e, o)
             ORDER BY x.o;
        RETURN;
    END IF;
    BEGIN
        FOR m IN SELECT e FROM jsonb_array_elements(p_batch) AS x(e) LOOP
            mid := m ->> 'm';
            -- Claim the mutation id. A concurrent push of the same id (a
            -- retry racing its original) waits here for the other
            -- transaction and then sees its stored outcome.
            INSERT INTO sync_mutation AS s (token_id, client_id, mutation_id, outcome)
            VALUES (p_token, p_client, mid, 0) ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                SELECT i, s.outcome, s.sentra_id, s.version, s.violations, false, s.kind
                  INTO r FROM sync_mutation s
                 WHERE s.token_id = p_token AND s.client_id = p_client AND s.mutation_id = mid;
            ELSIF m ? 'reject' THEN
                r := ROW(i, 3::smallint, NULL, NULL, m ->> 'reject', true,
                         coalesce((m ->> 'kind')::smallint, 1))::sync_result;
            ELSIF m ? 'kind' THEN
                r := record_apply(p_token, p_role, p_region, m);
                r.idx := i;
                r.fresh := true;
            ELSE
                r := sync_apply(p_token, p_role, p_region, m);
                r.idx := i;
                r.fresh := true;
                r.kind := 1;
            END IF;
            IF r.fresh THEN
                UPDATE sync_mutation s SET outcome = r.outcome, sentra_id = r.sentra_id,
                       version = r.version, violations = r.violations, kind = r.kind
                 WHERE s.token_id = p_token AND s.client_id = p_client AND s.mutation_id = mid;
                IF r.outcome <> 1 AND failed < 0 THEN
                    failed := i;
                    failed_mid := mid;
                END IF;
            END IF;
            res := res || r;
            i := i + 1;
        END LOOP;
        IF p_atomic AND failed >= 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'SY001', MESSAGE = 'atomic batch refused';
        END IF;
    EXCEPTION WHEN SQLSTATE 'SY001' THEN
        -- Everything this call did is undone (claims included). Report the
        -- mutations that had applied as refused, naming the culprit.
        FOR j IN 1 .. cardinality(res) LOOP
            r := res[j];
            IF r.fresh AND r.outcome = 1 THEN
                r.outcome := 3;
                r.version := NULL;
                r.violations := format('atomic: not applied, because mutations[%s] (%s) was not',
                                       failed, failed_mid);
                res[j] := r;
            END IF;
        END LOOP;
    END;
    -- A conflict's record: a sentra as the caller may read it now (one row
    -- per figures year), else its tombstone; a record of another kind as
    -- record_shown prints it.
    RETURN QUERY
        SELECT CASE WHEN sr.id IS NOT NULL THEN sr ELSE tomb.t END,
               x.idx, x.outcome, x.version, x.violations, coalesce(x.kind, 1::smallint),
               shown.packed, shown.version
          FROM unnest(res) x
          LEFT JOIN sentra_rows sr ON x.outcome = 2 AND coalesce(x.kind, 1) = 1
               AND sr.id = x.sentra_id
               AND sentra_can_read(p_role, p_region, sr.regency_code, sr.province_code)
          LEFT JOIN LATERAL (
               SELECT jsonb_populate_record(NULL::sentra_rows, jsonb_build_object(
                          'id', x.sentra_id, 'deleted', true,
                          'version', coalesce(
                              (SELECT s.version FROM sentra s WHERE s.id = x.sentra_id),
                              (SELECT p.version FROM sentra_purged p WHERE p.id = x.sentra_id)))) AS t
                WHERE x.outcome = 2 AND coalesce(x.kind, 1) = 1 AND sr.id IS NULL) tomb ON true
          LEFT JOIN LATERAL (SELECT * FROM record_shown(x.kind, p_role, p_region, x.sentra_id)
                              WHERE x.outcome = 2 AND coalesce(x.kind, 1) <> 1) shown ON true
         ORDER BY x.idx, sr.fig_year;
END $$;

-- ---------------------------------------------------------------- sync: retention

-- sync_compact of migrations/0009_integrity.sql, per record of any kind (a
-- record is (kind, record_id), a sentra's own rows record_id NULL): the
-- same rule, one record's rows compared with that record's rows only.
CREATE OR REPLACE FUNCTION sync_compact(p_keep interval DEFAULT interval '30 days')
RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM sentra_change c
         WHERE c.changed_at < now() - p_keep
           AND EXISTS (SELECT 1 FROM sentra_change d
                        WHERE d.sentra_id = c.sentra_id AND d.kind = c.kind
                          AND d.record_id IS NOT DISTINCT FROM c.record_id AND d.seq > c.seq
                          AND c.regency_code IN (d.regency_code, d.old_regency_code))
           AND (c.old_regency_code IS NULL
                OR EXISTS (SELECT 1 FROM sentra_change d
                            WHERE d.sentra_id = c.sentra_id AND d.kind = c.kind
                              AND d.record_id IS NOT DISTINCT FROM c.record_id AND d.seq > c.seq
                              AND c.old_regency_code IN (d.regency_code, d.old_regency_code)))
        RETURNING 1)
    SELECT count(*) FROM gone
$$;
