-- Sentra: the remaining rules of server/validate.c as constraints, so that
-- no writer can store what the service refuses (docs/DATA_MODEL.md,
-- "Validation"): one-line texts hold no control characters (the address
-- may hold line breaks and tabs), and dates start in 1945. Valid UTF-8 is
-- held by the database encoding itself.

ALTER TABLE sentra
    ADD CONSTRAINT sentra_one_line_texts CHECK (
        name !~ '[[:cntrl:]]' AND commodity !~ '[[:cntrl:]]'
        AND main_product !~ '[[:cntrl:]]' AND contact_name !~ '[[:cntrl:]]'
        AND coalesce(decree_number, '') !~ '[[:cntrl:]]'
        AND coalesce(decree_official, '') !~ '[[:cntrl:]]'),
    ADD CONSTRAINT sentra_address_text CHECK (
        address !~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]'),
    ADD CONSTRAINT sentra_dates_from_1945 CHECK (
        formed_on >= DATE '1945-01-01' AND decree_date >= DATE '1945-01-01');

ALTER TABLE sentra_figures
    ADD CONSTRAINT sentra_figures_unit_text CHECK (capacity_unit !~ '[[:cntrl:]]');
