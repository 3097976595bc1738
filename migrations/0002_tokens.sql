-- API tokens. The secret is shown once at creation; only its SHA-256 is kept.
-- Roles: district (one regency/city: read and write it), province (one
-- province: read and write its regencies/cities), national (read all, write
-- nothing), admin (manage tokens).

CREATE TABLE api_token (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    secret_hash bytea NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('district', 'province', 'national', 'admin')),
    region_code text REFERENCES region (code),
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CHECK ((role IN ('district', 'province')) = (region_code IS NOT NULL))
);

-- A district token names a regency or city; a province token a province.
CREATE FUNCTION api_token_check_region() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lvl text;
BEGIN
    IF NEW.region_code IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT level INTO lvl FROM region WHERE code = NEW.region_code;
    IF NEW.role = 'district' AND lvl NOT IN ('regency', 'city') THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003',
            MESSAGE = 'a district token needs a regency or city code',
            DETAIL = 'region_code: ' || NEW.region_code || ' is not a regency or city';
    END IF;
    IF NEW.role = 'province' AND lvl <> 'province' THEN
        RAISE EXCEPTION USING ERRCODE = 'SE003',
            MESSAGE = 'a province token needs a province code',
            DETAIL = 'region_code: ' || NEW.region_code || ' is not a province';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER api_token_check_region BEFORE INSERT OR UPDATE ON api_token
    FOR EACH ROW EXECUTE FUNCTION api_token_check_region();

-- Servers cache tokens; tell them when one is revoked.
CREATE FUNCTION api_token_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        PERFORM pg_notify('sentra_token', NEW.id::text);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER api_token_notify AFTER UPDATE ON api_token
    FOR EACH ROW EXECUTE FUNCTION api_token_notify();
