-- Sentra: the rules that need the database, the row shape the service
-- reads, and the write functions the service calls (one call per request).
--
-- Errors raised for the service carry SQLSTATE 'SE0NN' where NN is the gRPC
-- status code (server/call.h): SE003 INVALID_ARGUMENT with "field: reason"
-- lines in DETAIL, SE005 NOT_FOUND, SE007 PERMISSION_DENIED, SE010 ABORTED
-- with the current version in DETAIL. docs/DATA_MODEL.md describes them.

-- ---------------------------------------------------------------- scope

-- May a token of (role, region) read a record of this regency/province?
-- district: its regency/city; province: its regencies; national:
-- everything; admin: nothing (admin tokens manage tokens only). Written as one CASE so that, inlined with constant
-- parameters, it folds into an indexable "regency_code = '18.71'".
CREATE FUNCTION sentra_can_read(p_role text, p_region text,
                                p_regency text, p_province text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_role
        WHEN 'district' THEN p_regency = p_region
        WHEN 'province' THEN p_province = p_region
        WHEN 'national' THEN true
        ELSE false END
$$;

-- May it write there? Only district and province tokens write.
CREATE FUNCTION sentra_can_write(p_role text, p_region text, p_regency text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_role
        WHEN 'district' THEN p_regency = p_region
        WHEN 'province' THEN split_part(p_regency, '.', 1) = p_region
        ELSE false END
$$;

-- ---------------------------------------------------------------- rules

-- The rules of one record that the row's own CHECK constraints cannot hold:
-- reference data, "not in the future", and (when figs is given) the
-- designation rule over the figures. figs: a JSON array of figures objects
-- (at least "year" and "business_units"); fig_paths: whether violations
-- may name figures[i] (the array is the client's, in the client's order).
-- Returns "field: reason" lines, empty when the record is valid.
CREATE FUNCTION sentra_violations(r sentra, figs jsonb, fig_paths boolean)
RETURNS text[] LANGUAGE plpgsql STABLE AS $$
DECLARE
    v text[] := '{}';
    lvl text;
    today date := sentra_today();
    latest_i int;
    latest_units bigint;
    latest_year int;
BEGIN
    SELECT level INTO lvl FROM region WHERE code = r.regency_code;
    IF lvl IS NULL THEN
        v := v || ('regency_code: ' || r.regency_code || ' is not a known region');
    ELSIF lvl NOT IN ('regency', 'city') THEN
        v := v || ('regency_code: ' || r.regency_code || ' is a ' || lvl || ', not a regency or city');
    END IF;
    -- Sub-districts and villages are checked once their reference data is
    -- loaded for that regency (the base schema loads only provinces and
    -- regencies; the rest loads with a separate command).
    IF r.district_code IS NOT NULL AND lvl IS NOT NULL
       AND EXISTS (SELECT 1 FROM region WHERE parent_code = r.regency_code)
       AND NOT EXISTS (SELECT 1 FROM region WHERE code = r.district_code
                       AND parent_code = r.regency_code) THEN
        v := v || ('district_code: ' || r.district_code || ' is not a sub-district of ' || r.regency_code);
    END IF;
    IF r.village_code IS NOT NULL
       AND EXISTS (SELECT 1 FROM region WHERE parent_code = left(r.village_code, 8))
       AND NOT EXISTS (SELECT 1 FROM region WHERE code = r.village_code
                       AND parent_code = left(r.village_code, 8)) THEN
        v := v || ('village_code: ' || r.village_code || ' is not a village of ' || left(r.village_code, 8));
    ELSIF r.village_code IS NOT NULL AND r.district_code IS NULL
       AND EXISTS (SELECT 1 FROM region WHERE parent_code = r.regency_code)
       AND NOT EXISTS (SELECT 1 FROM region WHERE code = left(r.village_code, 8)
                       AND parent_code = r.regency_code) THEN
        v := v || ('village_code: ' || r.village_code || ' is not inside ' || r.regency_code);
    END IF;
    IF r.formed_on > today THEN
        v := v || 'formed_on: is in the future'::text;
    END IF;
    IF r.decree_date > today THEN
        v := v || 'decree.date: is in the future'::text;
    ELSIF r.decree_date < r.formed_on THEN
        v := v || 'decree.date: is before the formation date'::text;
    END IF;
    IF r.status IN (2, 3) THEN
        IF r.decree_number IS NULL THEN
            v := v || 'decree.number: is required when designated or revitalised'::text;
        END IF;
        IF r.decree_date IS NULL THEN
            v := v || 'decree.date: is required when designated or revitalised'::text;
        END IF;
        IF figs IS NOT NULL THEN
            SELECT o - 1, (e ->> 'business_units')::bigint, (e ->> 'year')::int
              INTO latest_i, latest_units, latest_year
              FROM jsonb_array_elements(figs) WITH ORDINALITY AS x(e, o)
             ORDER BY (e ->> 'year')::int DESC LIMIT 1;
            IF latest_i IS NULL THEN
                v := v || 'figures: a designated sentra needs figures with at least 5 business units'::text;
            ELSIF coalesce(latest_units, 0) < 5 THEN
                v := v || CASE WHEN fig_paths
                    THEN 'figures[' || latest_i || '].business_units: a designated sentra has at least 5 business units (latest year)'
                    ELSE 'figures: the latest figures (' || latest_year || ') have fewer than 5 business units, as a designated sentra needs' END;
            END IF;
        END IF;
    END IF;
    RETURN v;
END $$;

-- The figures of a stored record as the JSON array sentra_violations takes.
-- PL/pgSQL rather than LANGUAGE sql, like sentra_put_figures: see there.
CREATE FUNCTION sentra_figures_json(p_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(jsonb_agg(jsonb_build_object('year', year,
                                                         'business_units', business_units)),
                            '[]'::jsonb)
              FROM sentra_figures WHERE sentra_id = p_id);
END $$;

CREATE FUNCTION sentra_raise_violations(v text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(v) > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003',
            MESSAGE = 'invalid sentra: ' || cardinality(v) || ' field(s)',
            DETAIL = array_to_string(v, E'\n');
    END IF;
END $$;

-- Every writer: the row rules before the row is stored...
CREATE FUNCTION sentra_check_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted_at IS NULL THEN
        PERFORM sentra_raise_violations(sentra_violations(NEW, NULL, false));
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER sentra_check_row BEFORE INSERT OR UPDATE ON sentra
    FOR EACH ROW EXECUTE FUNCTION sentra_check_row();

-- ...and the designation rule at commit, when the figures are in place too.
-- Lean on purpose (two primary-key lookups): it fires for every figures row
-- written, and the write functions have already checked the same rule.
CREATE FUNCTION sentra_check_designation_of(p_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    st smallint;
    del timestamptz;
    units integer;
    yr smallint;
BEGIN
    SELECT status, deleted_at INTO st, del FROM sentra WHERE id = p_id;
    IF NOT FOUND OR del IS NOT NULL OR st NOT IN (2, 3) THEN
        RETURN;
    END IF;
    SELECT business_units, year INTO units, yr FROM sentra_figures
     WHERE sentra_id = p_id ORDER BY year DESC LIMIT 1;
    IF NOT FOUND THEN
        PERFORM sentra_raise_violations(ARRAY['figures: a designated sentra needs figures with at least 5 business units']);
    ELSIF units < 5 THEN
        PERFORM sentra_raise_violations(ARRAY['figures: the latest figures (' || yr
            || ') have fewer than 5 business units, as a designated sentra needs']);
    END IF;
END $$;

CREATE FUNCTION sentra_check_designation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sentra_check_designation_of(NEW.id);
    RETURN NULL;
END $$;

CREATE FUNCTION sentra_figures_check_designation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM sentra_check_designation_of(OLD.sentra_id);
    ELSE
        PERFORM sentra_check_designation_of(NEW.sentra_id);
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER sentra_check_designation AFTER INSERT OR UPDATE ON sentra
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.status IN (2, 3) AND NEW.deleted_at IS NULL)
    EXECUTE FUNCTION sentra_check_designation();
CREATE CONSTRAINT TRIGGER sentra_figures_check_designation
    AFTER INSERT OR UPDATE OR DELETE ON sentra_figures
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION sentra_figures_check_designation();

-- Figures years are plausible: not after this year.
CREATE FUNCTION sentra_figures_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.year > extract(year FROM sentra_today()) THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003',
            MESSAGE = 'invalid figures',
            DETAIL = 'figures.year: ' || NEW.year || ' is after this year';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER sentra_figures_check BEFORE INSERT OR UPDATE ON sentra_figures
    FOR EACH ROW EXECUTE FUNCTION sentra_figures_check();

-- ---------------------------------------------------------------- reading

-- A sentra as the service reads it (dates as text, times as Unix ms), plus
-- the raw columns the filters and list orders use (deleted_at ...
-- updated_at), so that ListSentra can filter and order this view directly
-- and compute the output only for the rows of its page.
CREATE VIEW sentra_api AS
SELECT s.id, s.regency_code, s.district_code, s.village_code, s.address,
       s.latitude, s.longitude, s.name, s.commodity, s.main_product,
       s.kbli_code, s.kbli_version, s.sector_group, s.status,
       to_char(s.formed_on, 'YYYY-MM-DD') AS formed_on,
       s.decree_number, to_char(s.decree_date, 'YYYY-MM-DD') AS decree_date,
       s.decree_official, s.contact_name, s.contact_phone, s.version,
       (extract(epoch FROM s.created_at) * 1000)::bigint AS created_ms,
       (extract(epoch FROM s.updated_at) * 1000)::bigint AS updated_ms,
       s.created_by, s.updated_by, s.province_code,
       s.deleted_at IS NOT NULL AS deleted,
       s.deleted_at, s.search, s.designated, s.created_at, s.updated_at
  FROM sentra s;

-- The shape the service reads: one row per (sentra, figures year), or one
-- row with NULL figures columns when a sentra has none. server/sentra_row.h
-- numbers these columns: change both together.
CREATE VIEW sentra_rows AS
SELECT a.id, a.regency_code, a.district_code, a.village_code, a.address,
       a.latitude, a.longitude, a.name, a.commodity, a.main_product,
       a.kbli_code, a.kbli_version, a.sector_group, a.status, a.formed_on,
       a.decree_number, a.decree_date, a.decree_official, a.contact_name,
       a.contact_phone, a.version, a.created_ms, a.updated_ms,
       a.created_by, a.updated_by, a.province_code, a.deleted,
       f.year AS fig_year, f.business_units, f.workers_male, f.workers_female,
       f.investment, f.production_value, f.material_value, f.capacity,
       f.capacity_unit, f.export_share_bp,
       array_to_string(f.export_destinations, ',') AS export_destinations
  FROM sentra_api a
  LEFT JOIN sentra_figures f ON f.sentra_id = a.id;

-- ---------------------------------------------------------------- idempotency

-- Claims (token, key) for method. Returns NULL when the key is new (the
-- caller goes on and must call sentra_idem_done), else the sentra id the
-- earlier write produced. A concurrent holder of the same key makes this
-- wait for its transaction (the unique index), so a key is never applied
-- twice. Keys older than 7 days are forgotten.
CREATE FUNCTION sentra_idem_claim(p_token uuid, p_key text, p_method text)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    m text;
    sid uuid;
BEGIN
    DELETE FROM idempotency
     WHERE token_id = p_token AND key = p_key AND created_at < now() - interval '7 days';
    -- Now and then, forget every expired key (cheap: an index range).
    IF random() < 0.001 THEN
        DELETE FROM idempotency WHERE created_at < now() - interval '7 days';
    END IF;
    INSERT INTO idempotency (token_id, key, method) VALUES (p_token, p_key, p_method)
        ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    SELECT method, sentra_id INTO m, sid FROM idempotency
     WHERE token_id = p_token AND key = p_key;
    IF m <> p_method THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003',
            MESSAGE = 'idempotency key reused for another method',
            DETAIL = 'idempotency_key: was used for ' || m || ', not ' || p_method;
    END IF;
    RETURN sid;
END $$;

-- ---------------------------------------------------------------- writing

-- CreateSentra. p_id NULL: the server picks the id. p_figures: a JSON array
-- of Figures objects (proto field names). Returns the stored record as
-- sentra_rows (with a repeated idempotency key: the record as it is now).
CREATE FUNCTION sentra_create(
    p_token uuid, p_role text, p_region text, p_idem text,
    p_id uuid, p_regency text, p_district text, p_village text, p_address text,
    p_lat double precision, p_lon double precision, p_name text,
    p_commodity text, p_main_product text, p_kbli_code text, p_kbli_version smallint,
    p_sector_group smallint, p_status smallint, p_formed_on date,
    p_decree_number text, p_decree_date date, p_decree_official text,
    p_contact_name text, p_contact_phone text, p_figures jsonb)
RETURNS SETOF sentra_rows LANGUAGE plpgsql AS $$
DECLARE
    r sentra;
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'create');
        IF prior IS NOT NULL THEN
            -- the record as it is now, if the token may still read it
            -- (a province may have moved it away since): else no row,
            -- which the service answers NOT_FOUND
            RETURN QUERY SELECT * FROM sentra_rows x WHERE x.id = prior
                AND sentra_can_read(p_role, p_region, x.regency_code, x.province_code)
                ORDER BY x.fig_year;
            RETURN;
        END IF;
    END IF;
    IF NOT sentra_can_write(p_role, p_region, p_regency) THEN
        RAISE EXCEPTION USING ERRCODE = 'SE007',
            MESSAGE = format('a %s token for %s may not write in %s',
                             p_role, coalesce(nullif(p_region, ''), 'the country'), p_regency);
    END IF;
    r.id := coalesce(p_id, gen_random_uuid());
    IF EXISTS (SELECT 1 FROM sentra WHERE id = r.id) THEN
        RAISE EXCEPTION USING ERRCODE = '23505',
            MESSAGE = format('a sentra with id %s already exists', r.id);
    END IF;
    r.regency_code := p_regency;
    r.district_code := p_district;
    r.village_code := p_village;
    r.address := coalesce(p_address, '');
    r.latitude := p_lat;
    r.longitude := p_lon;
    r.name := p_name;
    r.commodity := coalesce(p_commodity, '');
    r.main_product := coalesce(p_main_product, '');
    r.kbli_code := p_kbli_code;
    r.kbli_version := p_kbli_version;
    r.sector_group := p_sector_group;
    r.status := p_status;
    r.formed_on := p_formed_on;
    r.decree_number := p_decree_number;
    r.decree_date := p_decree_date;
    r.decree_official := p_decree_official;
    r.contact_name := coalesce(p_contact_name, '');
    r.contact_phone := coalesce(p_contact_phone, '');
    PERFORM sentra_raise_violations(sentra_violations(r, coalesce(p_figures, '[]'), true));

    INSERT INTO sentra (id, regency_code, district_code, village_code, address,
                        latitude, longitude, name, commodity, main_product,
                        kbli_code, kbli_version, sector_group, status, formed_on,
                        decree_number, decree_date, decree_official,
                        contact_name, contact_phone, created_by, updated_by)
    VALUES (r.id, r.regency_code, r.district_code, r.village_code, r.address,
            r.latitude, r.longitude, r.name, r.commodity, r.main_product,
            r.kbli_code, r.kbli_version, r.sector_group, r.status, r.formed_on,
            r.decree_number, r.decree_date, r.decree_official,
            r.contact_name, r.contact_phone, p_token, p_token);
    PERFORM sentra_put_figures(r.id, p_figures);
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency SET sentra_id = r.id, version = 1
         WHERE token_id = p_token AND key = p_idem;
    END IF;
    RETURN QUERY SELECT * FROM sentra_rows WHERE id = r.id ORDER BY fig_year;
END $$;

-- Replaces the figures of a sentra with a JSON array of Figures objects.
-- PL/pgSQL on purpose (docs/BENCHMARKS.md, "Write path and pull
-- performance"): a LANGUAGE sql function that is not inlined (one holding a
-- FROM, an INSERT or a DELETE) is parsed and planned again at every call in
-- PostgreSQL 15, while PL/pgSQL keeps each statement's plan for the session.
CREATE FUNCTION sentra_put_figures(p_id uuid, p_figures jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sentra_figures WHERE sentra_id = p_id;
    INSERT INTO sentra_figures (sentra_id, year, business_units, workers_male,
                                workers_female, investment, production_value,
                                material_value, capacity, capacity_unit,
                                export_share_bp, export_destinations)
    SELECT p_id, x.year, coalesce(x.business_units, 0), coalesce(x.workers_male, 0),
           coalesce(x.workers_female, 0), coalesce(x.investment, 0),
           coalesce(x.production_value, 0), coalesce(x.material_value, 0),
           coalesce(x.capacity, 0), coalesce(x.capacity_unit, ''),
           coalesce(x.export_share_bp, 0), coalesce(x.export_destinations, '{}')
      FROM jsonb_to_recordset(coalesce(p_figures, '[]')) AS x(
           year smallint, business_units integer, workers_male integer,
           workers_female integer, investment bigint, production_value bigint,
           material_value bigint, capacity bigint, capacity_unit text,
           export_share_bp integer, export_destinations text[]);
END $$;

-- Loads a live record for a write by (role, region), locked. A record the
-- token cannot read, or a tombstone, is NOT_FOUND (so ids of other
-- districts do not leak); one it can read but not write (national) is
-- PERMISSION_DENIED; a version other than p_expected is ABORTED with the
-- current version in DETAIL.
CREATE FUNCTION sentra_lock_for_write(p_role text, p_region text, p_id uuid,
                                      p_expected bigint)
RETURNS sentra LANGUAGE plpgsql AS $$
DECLARE
    r sentra;
BEGIN
    SELECT * INTO r FROM sentra WHERE id = p_id FOR UPDATE;
    IF NOT FOUND OR r.deleted_at IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'SE005',
            MESSAGE = format('no sentra %s', p_id);
    END IF;
    -- Writes outside the scope are PERMISSION_DENIED (issue 4), even for
    -- records the token cannot read; reads of them stay NOT_FOUND.
    IF NOT sentra_can_write(p_role, p_region, r.regency_code) THEN
        RAISE EXCEPTION USING ERRCODE = 'SE007',
            MESSAGE = format('a %s token may not change sentra %s', p_role, p_id);
    END IF;
    IF r.version <> p_expected THEN
        RAISE EXCEPTION USING ERRCODE = 'SE010',
            MESSAGE = format('sentra %s is at version %s, not %s', p_id, r.version, p_expected),
            DETAIL = r.version::text;
    END IF;
    RETURN r;
END $$;

-- UpdateSentra. p_mask: canonical field names (server/validate.c
-- validate_field_name); only those fields change, "figures" replaces the
-- whole list. The merged record is checked before it is written.
CREATE FUNCTION sentra_update(
    p_token uuid, p_role text, p_region text, p_idem text,
    p_id uuid, p_expected bigint, p_mask text[],
    p_regency text, p_district text, p_village text, p_address text,
    p_lat double precision, p_lon double precision, p_name text,
    p_commodity text, p_main_product text, p_kbli_code text, p_kbli_version smallint,
    p_sector_group smallint, p_status smallint, p_formed_on date,
    p_decree_number text, p_decree_date date, p_decree_official text,
    p_contact_name text, p_contact_phone text, p_figures jsonb)
RETURNS SETOF sentra_rows LANGUAGE plpgsql AS $$
DECLARE
    r sentra;
    prior uuid;
    figs boolean := 'figures' = ANY (p_mask);
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'update');
        IF prior IS NOT NULL THEN
            -- the record as it is now, if the token may still read it
            -- (a province may have moved it away since): else no row,
            -- which the service answers NOT_FOUND
            RETURN QUERY SELECT * FROM sentra_rows x WHERE x.id = prior
                AND sentra_can_read(p_role, p_region, x.regency_code, x.province_code)
                ORDER BY x.fig_year;
            RETURN;
        END IF;
    END IF;
    r := sentra_lock_for_write(p_role, p_region, p_id, p_expected);

    IF 'regency_code' = ANY (p_mask) THEN r.regency_code := p_regency; END IF;
    IF 'district_code' = ANY (p_mask) THEN r.district_code := p_district; END IF;
    IF 'village_code' = ANY (p_mask) THEN r.village_code := p_village; END IF;
    IF 'address' = ANY (p_mask) THEN r.address := coalesce(p_address, ''); END IF;
    IF 'location' = ANY (p_mask) THEN r.latitude := p_lat; r.longitude := p_lon; END IF;
    IF 'name' = ANY (p_mask) THEN r.name := p_name; END IF;
    IF 'commodity' = ANY (p_mask) THEN r.commodity := coalesce(p_commodity, ''); END IF;
    IF 'main_product' = ANY (p_mask) THEN r.main_product := coalesce(p_main_product, ''); END IF;
    IF 'kbli_code' = ANY (p_mask) THEN r.kbli_code := p_kbli_code; END IF;
    IF 'kbli_version' = ANY (p_mask) THEN r.kbli_version := p_kbli_version; END IF;
    IF 'sector_group' = ANY (p_mask) THEN r.sector_group := p_sector_group; END IF;
    IF 'status' = ANY (p_mask) THEN r.status := p_status; END IF;
    IF 'formed_on' = ANY (p_mask) THEN r.formed_on := p_formed_on; END IF;
    IF 'decree.number' = ANY (p_mask) THEN r.decree_number := p_decree_number; END IF;
    IF 'decree.date' = ANY (p_mask) THEN r.decree_date := p_decree_date; END IF;
    IF 'decree.official' = ANY (p_mask) THEN r.decree_official := p_decree_official; END IF;
    IF 'contact_name' = ANY (p_mask) THEN r.contact_name := coalesce(p_contact_name, ''); END IF;
    IF 'contact_phone' = ANY (p_mask) THEN r.contact_phone := coalesce(p_contact_phone, ''); END IF;

    -- Moving a record to another regency needs write access there too.
    IF NOT sentra_can_write(p_role, p_region, r.regency_code) THEN
        RAISE EXCEPTION USING ERRCODE = 'SE007',
            MESSAGE = format('a %s token for %s may not move a sentra to %s',
                             p_role, p_region, r.regency_code);
    END IF;
    -- Codes whose regency moved away are checked here (the C validator
    -- could not see the stored regency).
    IF r.district_code IS NOT NULL AND left(r.district_code, 5) <> r.regency_code THEN
        PERFORM sentra_raise_violations(ARRAY['district_code: ' || r.district_code
                                              || ' is not inside regency ' || r.regency_code]);
    END IF;
    IF r.village_code IS NOT NULL AND (left(r.village_code, 5) <> r.regency_code
       OR left(r.village_code, 8) <> coalesce(r.district_code, left(r.village_code, 8))) THEN
        PERFORM sentra_raise_violations(ARRAY['village_code: ' || r.village_code
                                              || ' is not inside ' || coalesce(r.district_code, r.regency_code)]);
    END IF;
    PERFORM sentra_raise_violations(sentra_violations(
        r, CASE WHEN figs THEN coalesce(p_figures, '[]') ELSE sentra_figures_json(r.id) END, figs));

    UPDATE sentra SET regency_code = r.regency_code, district_code = r.district_code,
           village_code = r.village_code, address = r.address, latitude = r.latitude,
           longitude = r.longitude, name = r.name, commodity = r.commodity,
           main_product = r.main_product, kbli_code = r.kbli_code,
           kbli_version = r.kbli_version, sector_group = r.sector_group,
           status = r.status, formed_on = r.formed_on, decree_number = r.decree_number,
           decree_date = r.decree_date, decree_official = r.decree_official,
           contact_name = r.contact_name, contact_phone = r.contact_phone,
           version = r.version + 1, updated_at = now(), updated_by = p_token
     WHERE id = p_id;
    IF figs THEN
        PERFORM sentra_put_figures(p_id, p_figures);
    END IF;
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency SET sentra_id = p_id, version = r.version + 1
         WHERE token_id = p_token AND key = p_idem;
    END IF;
    RETURN QUERY SELECT * FROM sentra_rows WHERE id = p_id ORDER BY fig_year;
END $$;

-- DeleteSentra: a tombstone (deleted_at set, version + 1), kept for sync.
-- Returns the id and the tombstone's version.
CREATE FUNCTION sentra_delete(p_token uuid, p_role text, p_region text, p_idem text,
                              p_id uuid, p_expected bigint)
RETURNS TABLE (id uuid, version bigint) LANGUAGE plpgsql AS $$
DECLARE
    r sentra;
    prior uuid;
BEGIN
    IF p_idem IS NOT NULL THEN
        prior := sentra_idem_claim(p_token, p_idem, 'delete');
        IF prior IS NOT NULL THEN
            RETURN QUERY SELECT i.sentra_id, i.version FROM idempotency i
                          WHERE i.token_id = p_token AND i.key = p_idem;
            RETURN;
        END IF;
    END IF;
    r := sentra_lock_for_write(p_role, p_region, p_id, p_expected);
    UPDATE sentra s SET deleted_at = now(), version = r.version + 1,
           updated_at = now(), updated_by = p_token
     WHERE s.id = p_id;
    IF p_idem IS NOT NULL THEN
        UPDATE idempotency i SET sentra_id = p_id, version = r.version + 1
         WHERE i.token_id = p_token AND i.key = p_idem;
    END IF;
    RETURN QUERY SELECT p_id, r.version + 1;
END $$;
