// report.test.mjs: the report page's model (web/js/model.js,
// reportRequests / reportFromStats / reportCsvRows / femaleShare): the
// GetStatistics answers of sentra-cli report turned into its rows, with the
// CLI's rules (client/cli/cli_report.c), and the requests checked against
// the CLI's source and the proto so that the two cannot drift apart.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { DICTS, setLang } from '../../web/js/i18n.js';
import { toCsv, parseCsv } from '../../web/js/csv.js';
import * as M from '../../web/js/model.js';

// Answers in proto3 JSON, as sentrad sends them: int64 as strings, zero
// fields left out.
const RS = {
    groupBy: ['GROUP_BY_REGENCY'],
    rows: [
        { keys: ['18.01'], labels: ['Kabupaten Lampung Selatan'], sentra: '6', designated: '4',
          members: '8', membersFemaleOwned: '1', withInstitution: '3' },
        { keys: ['18.04'], labels: ['Kabupaten Lampung Barat'], sentra: '5', designated: '5',
          members: '3', membersFemaleOwned: '2' },
        { keys: ['18.71'], labels: ['Kota Bandar Lampung'], sentra: '2' },
    ],
    total: { sentra: '13', designated: '9', members: '11', membersFemaleOwned: '3', withInstitution: '3',
             sentraWithMembers: '7', businessUnitsEffective: '140' },
};
const RO = {
    groupBy: ['GROUP_BY_REGENCY', 'GROUP_BY_OBSTACLE_CATEGORY'],
    rows: [
        { keys: ['18.01', 'marketing'], obstaclesOpen: '2', obstaclesInProgress: '1', obstaclesResolved: '9' },
        { keys: ['18.01', 'capital'], obstaclesOpen: '3' },
        { keys: ['18.01', 'raw_materials'], obstaclesInProgress: '3' },      // a three-way tie: proto order
        { keys: ['18.01', 'other'], obstaclesOpen: '1' },                    // fourth: counted, not named
        { keys: ['18.01', 'quality'], obstaclesResolved: '5' },             // nothing open: not named
        { keys: ['18.04', 'permits'], obstaclesOpen: '1' },
        { keys: ['18.04', 'no_such_category'], obstaclesOpen: '7' },         // unknown: left out
        { keys: ['18.99', 'capital'], obstaclesOpen: '4' },                  // no sentra row: left out
    ],
};
const RA = {
    groupBy: ['GROUP_BY_REGENCY', 'GROUP_BY_ASSISTANCE_YEAR'],
    rows: [
        { keys: ['18.01', '2025'], assistanceCount: '2', assistanceValue: '150000000' },
        { keys: ['18.01', '2026'], assistanceCount: '1', assistanceValue: '9007199254740993' },
        { keys: ['18.04', '2026'], assistanceCount: '3', assistanceValue: '45000000' },
        { keys: ['18.99', '2026'], assistanceCount: '9', assistanceValue: '1' },
    ],
};

test('report: the CLI\'s three requests (subjects, groupings, the province filter)', () => {
    const rq = M.reportRequests('18');
    assert.deepEqual(rq.sentra, { filter: { provinceCode: '18' }, subject: 'STATS_SUBJECT_SENTRA',
                                  groupBy: ['GROUP_BY_REGENCY'] });
    assert.deepEqual(rq.obstacles.groupBy, ['GROUP_BY_REGENCY', 'GROUP_BY_OBSTACLE_CATEGORY']);
    assert.equal(rq.obstacles.subject, 'STATS_SUBJECT_OBSTACLES');
    assert.deepEqual(rq.assistance.groupBy, ['GROUP_BY_REGENCY', 'GROUP_BY_ASSISTANCE_YEAR']);
    assert.equal(rq.assistance.subject, 'STATS_SUBJECT_ASSISTANCE');
    // The same names in the CLI's source, in the same order, and in the proto.
    const cli = readFileSync('client/cli/cli_report.c', 'utf8');
    const proto = readFileSync('proto/sentra/v1/sentra.proto', 'utf8');
    const cliGroups = (name) => {
        const m = new RegExp(`${name}\\[\\] = \\{([^}]*)\\}`).exec(cli);
        assert.ok(m, `cli_report.c has ${name}`);
        return [...m[1].matchAll(/SENTRA__V1__GROUP_BY__(GROUP_BY_\w+)/g)].map((x) => x[1]);
    };
    assert.deepEqual(cliGroups('g_reg'), rq.sentra.groupBy);
    assert.deepEqual(cliGroups('g_obs'), rq.obstacles.groupBy);
    assert.deepEqual(cliGroups('g_aid'), rq.assistance.groupBy);
    const cliSubjects = [...cli.matchAll(/SENTRA__V1__STATS_SUBJECT__(STATS_SUBJECT_\w+), g_(\w+)/g)]
        .map((x) => [x[2], x[1]]);
    assert.deepEqual(cliSubjects, [['reg', rq.sentra.subject], ['obs', rq.obstacles.subject],
                                   ['aid', rq.assistance.subject]]);
    for (const r of Object.values(rq)) {
        assert.match(proto, new RegExp(`\\b${r.subject} = \\d+;`));
        for (const g of r.groupBy) assert.match(proto, new RegExp(`\\b${g} = \\d+;`));
    }
});

test('report: the obstacle categories are the server\'s keys, in its order, named in both languages', () => {
    const src = readFileSync('server/services/handlers_stats.c', 'utf8');
    const m = /category_key\[\d+\] = \{([^}]*)\}/.exec(src);
    assert.ok(m, 'handlers_stats.c has category_key');
    const keys = [...m[1].matchAll(/"([a-z_]*)"/g)].map((x) => x[1]).filter(Boolean);
    assert.deepEqual(M.OBSTACLE_CATEGORIES, keys);
    const cli = /category_key\[MAX_CATS\] = \{([^}]*)\}/.exec(readFileSync('client/cli/cli_report.c', 'utf8'));
    assert.deepEqual([...cli[1].matchAll(/"([a-z_]*)"/g)].map((x) => x[1]).filter(Boolean), keys);
    for (const lang of ['id', 'en'])
        for (const k of keys) assert.ok(DICTS[lang]['obstacle.' + k], `${lang} obstacle.${k}`);
    assert.equal(M.REPORT_TOP, Number(/#define TOP (\d+)/.exec(readFileSync('client/cli/cli_report.c', 'utf8'))[1]));
});

test('report: rows per regency and the total, from the three answers', () => {
    const rep = M.reportFromStats(RS, RO, RA, 2026);
    assert.equal(rep.year, 2026);
    assert.deepEqual(rep.lines.map((l) => [l.code, l.name]), [
        ['18.01', 'Kabupaten Lampung Selatan'], ['18.04', 'Kabupaten Lampung Barat'], ['18.71', 'Kota Bandar Lampung']]);
    const [ls, lb, bl] = rep.lines;
    assert.deepEqual([ls.formed, ls.designated, ls.members, ls.membersFemaleOwned, ls.withInstitution],
                     [6n, 4n, 8n, 1n, 3n]);
    assert.deepEqual([bl.formed, bl.designated, bl.members, bl.withInstitution], [2n, 0n, 0n, 0n]);
    // Open + being handled, resolved not; the top three, most first, a tie
    // to the earlier category.
    assert.equal(ls.obstaclesOpen, 10n);
    assert.deepEqual(ls.top, [{ category: 'raw_materials', open: 3n }, { category: 'marketing', open: 3n },
                              { category: 'capital', open: 3n }]);
    assert.equal(lb.obstaclesOpen, 1n);
    assert.deepEqual(lb.top, [{ category: 'permits', open: 1n }]);
    assert.deepEqual(bl.top, []);
    // Assistance of the year only, int64 exact beyond 2^53.
    assert.deepEqual([ls.aidCount, ls.aidValue], [1n, 9007199254740993n]);
    assert.deepEqual([lb.aidCount, lb.aidValue], [3n, 45000000n]);
    assert.deepEqual([bl.aidCount, bl.aidValue], [0n, 0n]);
    // The total: the sentra answer's total row; obstacles and assistance
    // summed over the regencies listed (the CLI's way).
    const tot = rep.total;
    assert.deepEqual([tot.code, tot.name, tot.formed, tot.designated, tot.members], ['', 'Total', 13n, 9n, 11n]);
    assert.equal(tot.obstaclesOpen, 11n);
    assert.deepEqual(tot.top.map((x) => x.category), ['raw_materials', 'marketing', 'capital']);
    assert.deepEqual([tot.aidCount, tot.aidValue], [4n, 9007199299740993n]);
    assert.deepEqual(rep.members, { recorded: 7n, sentra: 13n, unitsEffective: 140n });
    // Another year.
    const y25 = M.reportFromStats(RS, RO, RA, '2025');
    assert.deepEqual([y25.lines[0].aidCount, y25.lines[0].aidValue, y25.total.aidCount], [2n, 150000000n, 2n]);
});

test('report: empty and partial answers', () => {
    const rep = M.reportFromStats({ groupBy: ['GROUP_BY_REGENCY'] }, {}, {}, 2026);
    assert.deepEqual(rep.lines, []);
    assert.deepEqual([rep.total.formed, rep.total.obstaclesOpen, rep.total.aidCount], [0n, 0n, 0n]);
    assert.deepEqual(M.reportCsvRows(rep), [['', 'Total', 0n, 0n, 0n, 0n, 0n, 0n, '', '', '', 2026, 0n, 0n]]);
    // At most REPORT_MAX_ROWS regencies, as the CLI.
    const many = { groupBy: ['GROUP_BY_REGENCY'],
                   rows: Array.from({ length: 70 }, (_, i) => ({ keys: [`18.${i}`], labels: [`R${i}`], sentra: '1' })) };
    assert.equal(M.reportFromStats(many, {}, {}, 2026).lines.length, M.REPORT_MAX_ROWS);
});

test('report: CSV rows are sentra-cli report --csv\'s columns', () => {
    const rep = M.reportFromStats(RS, RO, RA, 2026);
    const cli = readFileSync('client/cli/cli_report.c', 'utf8');
    const head = /printf\("(regency,name,[^"]*)"\s*"([^"]*)"\s*"([^"]*)\\n"\)/.exec(cli);
    assert.ok(head, 'cli_report.c prints its CSV header');
    assert.deepEqual(M.REPORT_CSV_HEADERS, (head[1] + head[2] + head[3]).split(','));
    const rows = M.reportCsvRows(rep);
    assert.equal(rows.length, 4);
    assert.deepEqual(rows[0], ['18.01', 'Kabupaten Lampung Selatan', 6n, 4n, 8n, 1n, 3n, 10n,
                               'raw_materials', 'marketing', 'capital', 2026, 1n, 9007199254740993n]);
    assert.deepEqual(rows[1].slice(8, 11), ['permits', '', '']);
    assert.deepEqual(rows[3].slice(0, 2), ['', 'Total']);
    const back = parseCsv(toCsv(M.REPORT_CSV_HEADERS, rows));
    assert.equal(back.length, 5);
    assert.equal(back[1][13], '9007199254740993');
    assert.equal(back[4][1], 'Total');
});

test('report: the women-owned share as the CLI\'s "%.0f%%" (an exact half to even)', () => {
    const share = (f, m) => M.femaleShare({ membersFemaleOwned: BigInt(f), members: BigInt(m) });
    assert.equal(share(0, 0), null);
    assert.equal(share(1, 8), 12);     // 12.5 -> 12
    assert.equal(share(3, 8), 38);     // 37.5 -> 38
    assert.equal(share(2, 3), 67);
    assert.equal(share(1, 3), 33);
    assert.equal(share(5, 5), 100);
    assert.equal(share(1, 200), 0);    // 0.5 -> 0
    assert.equal(share(3, 200), 2);    // 1.5 -> 2
    setLang('id');
});
