-- Text that displays as what it holds (issue 13, item 11).
--
-- The service refuses, in every text field, the characters that make text
-- display differently from what it holds: control characters (C0 but tab
-- and line breaks where a field may hold several lines, DEL, and the C1
-- controls U+0080..U+009F), the line and paragraph separators U+2028 and
-- U+2029, the bidirectional embeddings, overrides and isolates
-- (U+202A..U+202E, U+2066..U+2069, the "Trojan Source" characters), and
-- invisible characters that have no use in a name or an address (U+200B,
-- U+2060..U+2064, U+FEFF, U+FFF9..U+FFFB, the tags U+E0000..U+E007F).
-- validate_text_char() in server/services/validate.c is the rule in C;
-- docs/DATA_MODEL.md states it. This migration holds the same rule for
-- every other writer.
--
-- The checks of 0003 used [[:cntrl:]], whose meaning beyond ASCII depends
-- on the cluster's locale (C.UTF-8 counts U+0085 as a control, C does not),
-- and the address check named ASCII only, so a C1 control passed there.
-- The ranges are now written out. Each field gets a constraint of its own,
-- named <table>_<column>_text, so that a refusal names its field
-- (call_db_error in server/core/call.c maps constraint names to fields).
--
-- Rows written before may break the new rule: the constraints are added
-- NOT VALID (new and updated rows must pass), then validated; if old rows
-- fail, a WARNING says so and the constraint stays NOT VALID until they are
-- fixed and `ALTER TABLE ... VALIDATE CONSTRAINT ...` is run (the hint
-- of the warning gives the rule to look for them with).

-- May text t be stored? multiline: tab, line feed and carriage return
-- allowed. NUL cannot be in a text value at all.
CREATE FUNCTION sentra_text_ok(t text, multiline boolean)
RETURNS boolean LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT t !~ CASE WHEN multiline
        THEN '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]'
        ELSE '[\x01-\x1f\x7f-\x9f\u200b\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]'
    END
$$;

ALTER TABLE sentra DROP CONSTRAINT sentra_one_line_texts;
ALTER TABLE sentra DROP CONSTRAINT sentra_address_text;
ALTER TABLE sentra_figures DROP CONSTRAINT sentra_figures_unit_text;

ALTER TABLE sentra
    ADD CONSTRAINT sentra_name_text CHECK (sentra_text_ok(name, false)) NOT VALID,
    ADD CONSTRAINT sentra_commodity_text CHECK (sentra_text_ok(commodity, false)) NOT VALID,
    ADD CONSTRAINT sentra_main_product_text CHECK (sentra_text_ok(main_product, false)) NOT VALID,
    ADD CONSTRAINT sentra_contact_name_text CHECK (sentra_text_ok(contact_name, false)) NOT VALID,
    ADD CONSTRAINT sentra_decree_number_text CHECK (sentra_text_ok(decree_number, false)) NOT VALID,
    ADD CONSTRAINT sentra_decree_official_text CHECK (sentra_text_ok(decree_official, false)) NOT VALID,
    ADD CONSTRAINT sentra_address_text CHECK (sentra_text_ok(address, true)) NOT VALID;
ALTER TABLE sentra_figures
    ADD CONSTRAINT sentra_figures_capacity_unit_text CHECK (sentra_text_ok(capacity_unit, false)) NOT VALID;
ALTER TABLE api_token
    ADD CONSTRAINT api_token_label_text CHECK (sentra_text_ok(label, false)) NOT VALID;

DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conrelid::regclass AS tab, conname FROM pg_constraint
              WHERE conname IN ('sentra_name_text', 'sentra_commodity_text',
                                'sentra_main_product_text', 'sentra_contact_name_text',
                                'sentra_decree_number_text', 'sentra_decree_official_text',
                                'sentra_address_text', 'sentra_figures_capacity_unit_text',
                                'api_token_label_text')
                AND NOT convalidated LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.tab, c.conname);
        EXCEPTION WHEN check_violation THEN
            RAISE WARNING 'rows of % break the text rule %: fix them, then ALTER TABLE % VALIDATE CONSTRAINT %',
                c.tab, c.conname, c.tab, c.conname
                USING HINT = 'the rows for which this fails: '
                    || pg_get_constraintdef((SELECT oid FROM pg_constraint
                                              WHERE conname = c.conname));
        END;
    END LOOP;
END $$;
