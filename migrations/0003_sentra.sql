-- Sentra IKM records, their yearly figures, and the log of every change.
-- Enumerations are stored as the numbers of their sentra.v1 proto enums
-- (status, sector_group); kbli_version as the year of the KBLI edition.
-- The rules the service validates are held here too, so no other writer can
-- store what the service would refuse.

CREATE TABLE sentra (
    id              uuid PRIMARY KEY,
    regency_code    text NOT NULL REFERENCES region (code),
    province_code   text GENERATED ALWAYS AS (split_part(regency_code, '.', 1)) STORED,
    district_code   text CHECK (district_code LIKE regency_code || '.%'),
    village_code    text CHECK (village_code LIKE coalesce(district_code, regency_code) || '.%'),
    address         text NOT NULL DEFAULT '',
    latitude        double precision CHECK (latitude BETWEEN -11.5 AND 6.5),
    longitude       double precision CHECK (longitude BETWEEN 94.5 AND 141.5),
    name            text NOT NULL CHECK (char_length(name) BETWEEN 3 AND 200),
    commodity       text NOT NULL DEFAULT '',
    main_product    text NOT NULL DEFAULT '',
    kbli_code       text NOT NULL CHECK (kbli_code ~ '^(1[0-9]|2[0-9]|3[0-3])[0-9]{3}$'),
    kbli_version    smallint NOT NULL CHECK (kbli_version IN (2020, 2025)),
    sector_group    smallint NOT NULL CHECK (sector_group BETWEEN 1 AND 6),
    status          smallint NOT NULL CHECK (status BETWEEN 1 AND 5),
    formed_on       date,
    decree_number   text,
    decree_date     date,
    decree_official text,
    contact_name    text NOT NULL DEFAULT '',
    contact_phone   text NOT NULL DEFAULT '',
    version         bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    created_by      uuid,
    updated_by      uuid,
    deleted_at      timestamptz,       -- a tombstone: kept for sync
    CHECK ((latitude IS NULL) = (longitude IS NULL)),
    -- designated (2) and revitalised (3) sentra hold a decree
    CHECK (status NOT IN (2, 3) OR (decree_number IS NOT NULL AND decree_date IS NOT NULL)),
    CHECK (decree_date IS NULL OR formed_on IS NULL OR decree_date >= formed_on)
);

CREATE INDEX sentra_regency ON sentra (regency_code);
CREATE INDEX sentra_province ON sentra (province_code);
CREATE INDEX sentra_updated ON sentra (updated_at, id);

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
    capacity_unit       text NOT NULL DEFAULT '',
    export_share_bp     integer NOT NULL DEFAULT 0 CHECK (export_share_bp BETWEEN 0 AND 10000),
    export_destinations text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (sentra_id, year)
);

-- Every change to a sentra: who, when, old and new version. txid is the
-- writing transaction's 64-bit id; sync orders the feed by (txid, seq) and
-- serves only transactions below the oldest one still running, so that a
-- reader never skips a change that commits late (see docs/SYNC.md).
CREATE TABLE sentra_change (
    seq         bigserial PRIMARY KEY,
    txid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    sentra_id   uuid NOT NULL,
    op          char(1) NOT NULL CHECK (op IN ('C', 'U', 'D')),
    old_version bigint,
    new_version bigint NOT NULL,
    token_id    uuid,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sentra_change_feed ON sentra_change (txid, seq);
CREATE INDEX sentra_change_sentra ON sentra_change (sentra_id, seq);
