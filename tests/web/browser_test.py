#!/usr/bin/python3
"""browser_test.py: the dashboard in real headless Chromium against a real
sentrad (started with the demo data by tests/integration/test_web_browser.sh).

What a provincial office does: sign in with the Lampung province token, read
73 and 54 on the overview (and the other figures as sentra-cli stats prints
them), see the charts and the map drawn, filter by clicking a regency on the
map and on the chart, page the list, download its CSV, open a record and its
CSV. What a district office does: create a sentra (first with mistakes: the
page shows the API's own per-field errors), one named
<img src=x onerror=alert(1)>, which must show as those characters; edit it
with the version it read, and meet a version conflict. The report page
(#/report) against `sentra-cli report --json` and `--csv`, run at that
moment on the same server, for a province, a district and a national token,
printed to A4 landscape. Then English, a phone screen, and no errors in the
browser console. Screenshots go to $OUT.

Environment: BASE (http://127.0.0.1:PORT), PROVINCE_TOKEN, DISTRICT_TOKEN
(regency 18.04), NATIONAL_TOKEN, CLI_TOTAL (sentra-cli stats --csv's TOTAL row),
SENTRA_CLI (the sentra-cli binary), ADDR (127.0.0.1:PORT), OUT.
Prints "N passed, N failed".
"""
import base64
import csv
import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ["BASE"]
PROVINCE = os.environ["PROVINCE_TOKEN"]
DISTRICT = os.environ["DISTRICT_TOKEN"]
NATIONAL = os.environ["NATIONAL_TOKEN"]
ADMIN = os.environ["ADMIN_TOKEN"]
OUT = os.environ.get("OUT", "build/web-test")
CLI_TOTAL = os.environ.get("CLI_TOTAL", "")
SENTRA_CLI = os.environ.get("SENTRA_CLI", "bin/sentra-cli")
ADDR = os.environ.get("ADDR", BASE.split("//", 1)[-1])
XSS = "<img src=x onerror=alert(1)>"

passed = failed = 0


def ok(name):
    global passed
    passed += 1
    print("ok   - " + name, flush=True)


def bad(name, detail=""):
    global failed
    failed += 1
    print("FAIL - " + name + (("\n       " + str(detail)) if detail else ""), flush=True)


def check(name, expected, actual):
    if expected == actual:
        ok(name)
    else:
        bad(name, "expected %r, got %r" % (expected, actual))


def truthy(name, cond, detail=""):
    ok(name) if cond else bad(name, detail)


# ---------------------------------------------------------------- the API, directly

def api(method, body, token):
    """A Connect unary call with urllib: the expectations come from the
    server itself, not from the page."""
    req = urllib.request.Request(BASE + "/" + method, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def violations(err):
    """google.rpc.BadRequest from a Connect error, decoded here with a few
    lines of protobuf reading of our own (independent of the page's)."""
    out = []
    for d in err.get("details", []):
        if d.get("type") != "google.rpc.BadRequest":
            continue
        v = d["value"]
        b = base64.b64decode(v + "=" * (-len(v) % 4))

        def fields(buf):
            i = 0
            while i < len(buf):
                key, shift = 0, 0
                while True:
                    c = buf[i]; i += 1
                    key |= (c & 0x7f) << shift; shift += 7
                    if not c & 0x80:
                        break
                n, shift = 0, 0
                while True:
                    c = buf[i]; i += 1
                    n |= (c & 0x7f) << shift; shift += 7
                    if not c & 0x80:
                        break
                yield key >> 3, buf[i:i + n]
                i += n
        for no, fv in fields(b):
            item = dict((k, val.decode()) for k, val in fields(fv))
            out.append((item.get(1, ""), item.get(2, "")))
    return out


# ---------------------------------------------------------------- the browser

def browser(tmp):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run",
              "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=id",
              "--user-data-dir=" + os.path.join(tmp, "profile")):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {
        "download.default_directory": os.path.join(tmp, "downloads"),
        "download.prompt_for_download": False,
        "intl.accept_languages": "id",
    })
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.set_page_load_timeout(30)
    d.execute_cdp_cmd("Browser.setDownloadBehavior",
                      {"behavior": "allow", "downloadPath": os.path.join(tmp, "downloads")})
    return d


def js(d, script, *args):
    return d.execute_script(script, *args)


def settled(d, what, timeout=20):
    """Waits until no API call is in flight and what(d) holds."""
    def cond(drv):
        try:
            return js(drv, "return document.documentElement.dataset.busy") == "0" and what(drv)
        except Exception:
            return False
    WebDriverWait(d, timeout, poll_frequency=0.1).until(cond)


def shot(d, name):
    os.makedirs(OUT, exist_ok=True)
    d.save_screenshot(os.path.join(OUT, name))


def shot_full(d, name, width=1280):
    """The whole page, by making the window as tall as the page."""
    h = js(d, "return document.documentElement.scrollHeight")
    d.set_window_size(width, min(int(h) + 140, 5000))
    time.sleep(0.3)
    shot(d, name)
    d.set_window_size(1280, 1000)


def click_at(d, x, y):
    """A real pointer click at viewport coordinates."""
    ab = ActionBuilder(d)
    ab.pointer_action.move_to_location(int(x), int(y))
    ab.pointer_action.click()
    ab.perform()


def downloaded(tmp, pattern, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        got = [f for f in glob.glob(os.path.join(tmp, "downloads", pattern)) if not f.endswith(".crdownload")]
        if got:
            time.sleep(0.2)
            return got[0]
        time.sleep(0.1)
    return None


def read_csv(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("\ufeff"), "CSV starts with a BOM"
    return list(csv.reader(io.StringIO(text[1:])))


def sign_in(d, token):
    d.get(BASE + "/")
    WebDriverWait(d, 20).until(lambda drv: drv.find_elements(By.ID, "token"))
    d.find_element(By.ID, "token").send_keys(token)
    d.find_element(By.ID, "signin-submit").click()
    settled(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#overview-cards .card")) == 7
            and drv.find_elements(By.CSS_SELECTOR, "#list-body table, #list-body p"))


def card(d, cid):
    return d.find_element(By.CSS_SELECTOR, "#%s .value" % cid).get_attribute("data-value")


def chart_labels(d, name):
    return js(d, "const c = Chart.getChart(document.querySelector('canvas[data-chart=%s]'));"
                 "return c ? c.data.labels : null;" % name)


def painted(d, name):
    """Pixels of a chart's canvas that are not transparent."""
    return js(d, """const cv = document.querySelector('canvas[data-chart=%s]');
        if (!cv) return 0;
        const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i]) n++; return n;""" % name)


def bar_point(d, name, index):
    """Viewport coordinates of bar `index` of dataset 0 of a chart (Chart.js
    keeps its elements in CSS pixels of the canvas)."""
    return js(d, """const cv = document.querySelector('canvas[data-chart=%s]');
        cv.scrollIntoView({block: 'center'});
        const el = Chart.getChart(cv).getDatasetMeta(0).data[arguments[0]];
        const r = cv.getBoundingClientRect(), p = el.getCenterPoint();
        return [r.left + p.x, r.top + p.y];""" % name, index)


def own_point(d, selector):
    """A viewport point where the element itself (not a dot drawn over it)
    receives the click, or None."""
    return js(d, """const el = document.querySelector(arguments[0]);
        el.scrollIntoView({block: 'center'});
        const r = el.getBoundingClientRect();
        for (let fy = 0.5; fy < 1; fy += 0.07) for (const sgn of [1, -1])
          for (let fx = 0.5; fx < 1; fx += 0.07) for (const sx of [1, -1]) {
            const x = r.left + r.width * (0.5 + sx * (fx - 0.5)), y = r.top + r.height * (0.5 + sgn * (fy - 0.5));
            if (document.elementFromPoint(x, y) === el) return [x, y];
          }
        return null;""", selector)


def table_names(d):
    return [a.text for a in d.find_elements(By.CSS_SELECTOR, "#sentra-table tbody a.record-link")]


def console_errors(d, allowed):
    """SEVERE console entries, less the network lines of requests this test
    made fail on purpose (Chromium logs every 4xx answer to fetch)."""
    out = []
    for e in d.get_log("browser"):
        if e.get("level") != "SEVERE":
            continue
        msg = e.get("message", "")
        if any(a in msg for a in allowed) and "Failed to load resource" in msg:
            continue
        out.append(msg)
    return out


# ---------------------------------------------------------------- the province office

def province_office(d, tmp):
    st, stats = api("sentra.v1.StatsService/GetStatistics", {"groupBy": ["GROUP_BY_REGENCY"]}, PROVINCE)
    check("the API answers GetStatistics over HTTP/JSON", 200, st)
    total = stats["total"]

    with urllib.request.urlopen(BASE + "/", timeout=10) as r:
        csp = r.headers.get("Content-Security-Policy", "")
        page = r.read().decode()
    truthy("the page comes with a Content-Security-Policy without 'unsafe-inline' or 'unsafe-eval'",
           "script-src" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp)
    truthy("index.html is the dashboard's", 'src="js/app.js"' in page)

    d.get(BASE + "/")
    WebDriverWait(d, 20).until(lambda drv: drv.find_elements(By.ID, "token"))
    shot(d, "signin.png")
    check("the page is in Bahasa Indonesia", "id", js(d, "return document.documentElement.lang"))
    sign_in(d, PROVINCE)
    truthy("the token is not in the address", "snt_" not in d.current_url, d.current_url)
    check("the token is in sessionStorage", PROVINCE, js(d, "return sessionStorage.getItem('sentra.token')"))
    check("nor in localStorage", None, js(d, "return Object.values(localStorage).find(v => v.includes('snt_')) || null"))
    scope = d.find_element(By.ID, "scope")
    check("scope: province", "province", scope.get_attribute("data-role"))
    truthy("scope: names Lampung (18) and its 15 regencies", "Lampung (18)" in scope.text and "15" in scope.text, scope.text)
    truthy("scope: the token's label, as WhoAmI says", "test_web" in scope.text, scope.text)

    check("overview: 73 sentra formed", "73", card(d, "ov-sentra"))
    check("overview: 54 designated", "54", card(d, "ov-designated"))
    check("overview: the rate as the CLI prints it", "74,0%",
          d.find_element(By.CSS_SELECTOR, "#ov-rate .value").text)
    for cid, key in (("ov-units", "businessUnits"), ("ov-workers", "workersTotal"),
                     ("ov-investment", "investment"), ("ov-production", "productionValue")):
        check("overview: %s as GetStatistics' total" % key, total.get(key, "0"), card(d, cid))
    if CLI_TOTAL:
        # SENTRA..MATERIAL of the TOTAL row, by the CSV's header (the CLI
        # has more columns since issue 18).
        r = subprocess.run([SENTRA_CLI, "--addr", ADDR, "--token", PROVINCE, "stats", "--csv"],
                           capture_output=True, text=True, timeout=60)
        tot = list(csv.DictReader(io.StringIO(r.stdout)))[-1]
        check("sentra-cli stats: the last row is the TOTAL the test was given", CLI_TOTAL,
              r.stdout.strip().splitlines()[-1])
        cli = [tot[k] for k in ("SENTRA", "DESIGNATED", "RATE", "UNITS", "WORKERS_M", "WORKERS_F", "WORKERS",
                                "INVESTMENT", "PRODUCTION", "MATERIAL")]
        page = [card(d, "ov-sentra"), card(d, "ov-designated"), None, card(d, "ov-units"), None, None,
                card(d, "ov-workers"), card(d, "ov-investment"), card(d, "ov-production")]
        same = all(p is None or p == c for p, c in zip(page, cli))
        truthy("overview: the same numbers as sentra-cli stats", same, "page %r, cli %r" % (page, cli))
        split = d.find_element(By.CSS_SELECTOR, "#ov-workers .sub").text
        men = "{:,}".format(int(cli[4])).replace(",", ".")
        women = "{:,}".format(int(cli[5])).replace(",", ".")
        truthy("overview: men and women as sentra-cli stats", men in split and women in split, split)
    else:
        bad("sentra-cli stats total was not given")

    labels = chart_labels(d, "regions")
    check("region chart: 15 regencies in its data", 15, len(labels or []))
    check("region chart: the API's region names", sorted(r["labels"][0] for r in stats["rows"]), sorted(labels or []))
    for name in ("regions", "series", "sectors"):
        truthy("chart %s drawn (non-empty canvas)" % name, painted(d, name) > 500, painted(d, name))
    ts = chart_labels(d, "series")
    truthy("time series: years in order", ts == sorted(ts) and len(ts) >= 5, ts)

    settled(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#map-body[data-drawn=yes]"))
    check("map: 34 province shapes", 34, len(d.find_elements(By.CSS_SELECTOR, "#map-body path.shape")))
    check("map: a circle per regency", 15, len(d.find_elements(By.CSS_SELECTOR, "#map-body circle.regency")))
    check("map: a dot per sentra", 73, len(d.find_elements(By.CSS_SELECTOR, "#map-body circle.point")))
    lampung = d.find_element(By.CSS_SELECTOR, "#map-body path.shape[data-shape='18']")
    truthy("map: zoomed into Lampung", "focus" in lampung.get_attribute("class"))
    fills = {c.get_attribute("fill") for c in d.find_elements(By.CSS_SELECTOR, "#map-body circle.regency")}
    truthy("map: regency circles shaded by count", len(fills) >= 3, fills)
    shot(d, "dashboard.png")
    shot_full(d, "dashboard-full.png")

    # A regency clicked on the map (a real pointer click on its circle).
    pt = own_point(d, "#map-body circle.regency[data-regency='18.04']")
    truthy("map: the Lampung Barat circle can be clicked", pt is not None)
    if pt:
        click_at(d, *pt)
        settled(d, lambda drv: "regency=18.04" in drv.current_url and
                drv.find_elements(By.CSS_SELECTOR, "#map-body[data-drawn=yes]"))
        st, lb = api("sentra.v1.StatsService/GetStatistics",
                     {"filter": {"regencyCode": "18.04"}, "groupBy": []}, PROVINCE)
        check("map click: the overview is Lampung Barat's", lb["total"]["sentra"], card(d, "ov-sentra"))
        regs = {t.text for t in d.find_elements(By.CSS_SELECTOR, "#sentra-table tbody td:nth-child(2)")}
        check("map click: the list is Lampung Barat's", {"Kabupaten Lampung Barat"}, regs)
        truthy("map click: the circle is marked",
               "selected" in d.find_element(By.CSS_SELECTOR, "circle.regency[data-regency='18.04']").get_attribute("class"))
        check("map click: the region chart still shows the 15", 15, len(chart_labels(d, "regions") or []))
        shot(d, "regency.png")

    # A regency clicked on the bar chart (Kota Bandar Lampung).
    labels = chart_labels(d, "regions")
    idx = labels.index("Kota Bandar Lampung")
    x, y = bar_point(d, "regions", idx)
    click_at(d, x, y)
    try:
        settled(d, lambda drv: "regency=18.71" in drv.current_url)
        st, bl = api("sentra.v1.StatsService/GetStatistics",
                     {"filter": {"regencyCode": "18.71"}, "groupBy": []}, PROVINCE)
        check("chart click: the overview is Bandar Lampung's", bl["total"]["sentra"], card(d, "ov-sentra"))
    except TimeoutException:
        bad("chart click: filters by Kota Bandar Lampung", d.current_url)

    # Back to the province through the crumbs; page the list.
    js(d, "performance.clearResourceTimings()")
    d.find_element(By.LINK_TEXT, "Lampung").click()
    settled(d, lambda drv: "regency" not in drv.current_url and card(drv, "ov-sentra") == "73"
            and drv.find_elements(By.CSS_SELECTOR, "#map-body[data-drawn=yes]"))
    ok("crumb: back to the whole province")
    # The same reads as the first visit: GETs the browser revalidates with
    # If-None-Match; a 304 transfers headers only.
    got = js(d, """return performance.getEntriesByType('resource')
        .filter(e => e.name.includes('/sentra.v1.StatsService/GetStatistics?'))
        .map(e => [e.transferSize, e.encodedBodySize]);""")
    truthy("repeated reads come back as 304 from the browser's cache check",
           any(t < b for t, b in got) and all(t <= b + 2000 for t, b in got), got)
    page1 = table_names(d)
    check("list: 20 on the first page", 20, len(page1))
    truthy("list: 1–20 of 73", "1–20 dari 73" in d.find_element(By.ID, "list-page").text,
           d.find_element(By.ID, "list-page").text)
    seen = list(page1)
    for n in (2, 3, 4):
        d.find_element(By.ID, "list-next").click()
        settled(d, lambda drv: drv.find_element(By.ID, "list-page").get_attribute("data-page") == str(n))
        names = table_names(d)
        seen += names
        if n == 2:
            page2 = names
            d.find_element(By.ID, "list-csv").click()
            f = downloaded(tmp, "sentra-18-*-p2.csv")
            truthy("CSV: the second page downloads", f is not None)
            if f:
                rows = read_csv(f)
                check("CSV: a header and the 20 rows shown", 21, len(rows))
                check("CSV: the names shown, in order", page2, [r[1] for r in rows[1:]])
                check("CSV: the region name beside its code", True,
                      all(r[4].startswith(("Kabupaten ", "Kota ")) for r in rows[1:]))
                shutil.copy(f, os.path.join(OUT, "list-page2.csv"))
    check("list: the fourth page has the last 13", 13, len(names))
    check("list: no next page after the last", False, d.find_element(By.ID, "list-next").is_enabled())
    check("list: 73 different sentra over the pages", 73, len(set(seen)))
    st, first = api("sentra.v1.SentraService/ListSentra", {"pageSize": 1000}, PROVINCE)
    check("list: the same 73 as ListSentra", sorted(s["name"] for s in first["sentra"]), sorted(seen))
    d.find_element(By.ID, "list-prev").click()
    settled(d, lambda drv: drv.find_element(By.ID, "list-page").get_attribute("data-page") == "3")
    ok("list: back one page")

    # A record and its yearly figures.
    link = d.find_elements(By.CSS_SELECTOR, "#sentra-table a.record-link")[0]
    name = link.text
    link.click()
    settled(d, lambda drv: drv.find_elements(By.ID, "record-name"))
    check("record: its name", name, d.find_element(By.ID, "record-name").text)
    rid = d.find_element(By.ID, "record").get_attribute("data-id")
    st, rec = api("sentra.v1.SentraService/GetSentra", {"id": rid}, PROVINCE)
    figs = d.find_elements(By.CSS_SELECTOR, "#figures-table tbody tr")
    check("record: a row per year of figures", len(rec.get("figures", [])), len(figs))
    shot(d, "record.png")
    d.find_element(By.ID, "record-csv").click()
    f = downloaded(tmp, "sentra-%s-figures.csv" % rid)
    truthy("record CSV downloads", f is not None)
    if f:
        rows = read_csv(f)
        check("record CSV: one row per year", len(rec.get("figures", [])) + 1, len(rows))
        check("record CSV: business units of the first year",
              sorted(rec["figures"], key=lambda x: x["year"])[0].get("businessUnits", "0"), rows[1][3])

    # Search and a filter, as a person types and chooses them.
    d.find_element(By.ID, "back").click()
    settled(d, lambda drv: drv.find_elements(By.ID, "f-text") and card(drv, "ov-sentra") == "73")
    d.find_element(By.ID, "f-text").send_keys("kopi")
    d.find_element(By.ID, "f-search").click()
    settled(d, lambda drv: "q=kopi" in drv.current_url and drv.find_elements(By.CSS_SELECTOR, "#sentra-table"))
    st, kopi = api("sentra.v1.StatsService/GetStatistics", {"filter": {"text": "kopi"}, "groupBy": []}, PROVINCE)
    check("search: the overview counts what matches", kopi["total"]["sentra"], card(d, "ov-sentra"))
    check("search: the list shows as many", int(kopi["total"]["sentra"]), len(table_names(d)))
    Select(d.find_element(By.ID, "f-designation")).select_by_value("designated")
    settled(d, lambda drv: "designation=designated" in drv.current_url and "q=kopi" in drv.current_url)
    st, kd = api("sentra.v1.StatsService/GetStatistics",
                 {"filter": {"text": "kopi", "designation": "DESIGNATION_DESIGNATED"}, "groupBy": []}, PROVINCE)
    check("filter: designated among them", kd["total"]["sentra"], card(d, "ov-sentra"))
    d.find_element(By.ID, "f-reset").click()
    settled(d, lambda drv: card(drv, "ov-sentra") == "73")
    ok("filters cleared")


# ---------------------------------------------------------------- the report

def cli_report(token, *args):
    """sentra-cli report's output, run now against the same server."""
    r = subprocess.run([SENTRA_CLI, "--addr", ADDR, "--token", token, "report", "--province", "18"] + list(args),
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("sentra-cli report %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def id_int(v):
    """An integer as the page shows it in Bahasa Indonesia (1.234.567)."""
    return "{:,}".format(int(v)).replace(",", ".")


def report_settled(d, want_year):
    settled(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#report-body[data-loading=no]")
            and drv.find_element(By.ID, "report").get_attribute("data-year") == str(want_year))


def report_matches_cli(d, token, year, what, year_args=None):
    """Every row and figure of the page against sentra-cli report --json, and
    the page's CSV against --csv. year_args: the CLI's year options (None:
    --year year)."""
    args = ["--year", str(year)] if year_args is None else year_args
    want = [json.loads(line) for line in cli_report(token, "--json", *args).splitlines() if line.strip()]
    truthy("%s: the CLI reports regencies and a total" % what, len(want) >= 2, want)
    rows = d.find_elements(By.CSS_SELECTOR, "#report-table tbody tr") + \
        d.find_elements(By.CSS_SELECTOR, "#report-table tfoot tr")
    check("%s: a row per regency and the total, in the CLI's order" % what,
          [w["regency"] for w in want], [r.get_attribute("data-regency") for r in rows])
    cols = ["formed", "designated", "members", "members_female_owned", "with_institution", "obstacles_open",
            "assistance_count", "assistance_value"]
    got_all, want_all = [], []
    for w, r in zip(want, rows):
        cell = lambda c: r.find_element(By.CSS_SELECTOR, "[data-col=%s]" % c)
        got_all.append([cell(c).get_attribute("data-value") for c in cols] +
                       [cell("top_open").get_attribute("data-value"), w["assistance_year"]])
        want_all.append([str(w[c]) for c in cols] +
                        [",".join("%s:%d" % (x["category"], x["open"]) for x in w["top_open_categories"]), year])
        if w["regency"]:
            check("%s: %s's name" % (what, w["regency"]), w["name"], cell("name").text)
    check("%s: every figure is the CLI's" % what, want_all, got_all)
    return want, rows


def report_page(d, tmp):
    """The report of the province token against the CLI."""
    # A year with assistance in the demo data (it has none this year), the
    # one with the most: asked of the server, not written here.
    st, by_year = api("sentra.v1.StatsService/GetStatistics",
                      {"subject": "STATS_SUBJECT_ASSISTANCE", "groupBy": ["GROUP_BY_ASSISTANCE_YEAR"]}, PROVINCE)
    year = int(max(by_year["rows"], key=lambda r: int(r.get("assistanceCount", "0")))["keys"][0])
    d.get(BASE + "/#/")
    settled(d, lambda drv: drv.find_elements(By.ID, "nav-report"))
    d.find_element(By.ID, "nav-report").click()
    this_year = int(js(d, "return new Date().getFullYear()"))
    report_settled(d, this_year)
    check("report: Lampung's, without a province chooser", (1, 0),
          (len(d.find_elements(By.ID, "report-title")), len(d.find_elements(By.ID, "report-province"))))
    truthy("report: the title names the province and the year",
           "Lampung" in d.find_element(By.ID, "report-title").text and
           str(this_year) in d.find_element(By.ID, "report-title").text, d.find_element(By.ID, "report-title").text)
    # The default year is this year, as the CLI's.
    report_matches_cli(d, PROVINCE, this_year, "report (this year)", year_args=[])

    # The year typed in, as a person does.
    y = d.find_element(By.ID, "report-year")
    y.clear()
    y.send_keys(str(year))
    d.find_element(By.ID, "report-year-go").click()
    report_settled(d, year)
    check("report: the year in the address", True, ("year=%d" % year) in d.current_url)
    want, rows = report_matches_cli(d, PROVINCE, year, "report %d" % year)
    total = want[-1]
    truthy("report: assistance in %d (the figures are not all zero)" % year,
           total["assistance_count"] > 0 and total["obstacles_open"] > 0 and total["members"] > 0, total)
    foot = rows[-1]
    check("report: the total's value as the dashboard writes rupiah", "Rp " + id_int(total["assistance_value"]),
          foot.find_element(By.CSS_SELECTOR, "[data-col=assistance_value]").text)
    check("report: the total's members with the thousands dot", id_int(total["members"]),
          foot.find_element(By.CSS_SELECTOR, "[data-col=members]").text)
    check("report: the total row's label", "Jumlah", foot.find_element(By.CSS_SELECTOR, "[data-col=name]").text)
    first = next(w for w in want if w["regency"] and w["top_open_categories"])
    top_cell = d.find_element(By.CSS_SELECTOR, "#report-table tr[data-regency='%s'] [data-col=top_open]" % first["regency"])
    check("report: the top categories named with their counts, most first",
          [str(x["open"]) for x in first["top_open_categories"]], re.findall(r"[ \u00a0](\d+)(?=,|$)", top_cell.text))
    check("report: a category in Bahasa Indonesia", True, "bahan baku" in d.find_element(By.ID, "report-table").text)
    for w, r in zip(want, rows):
        share = "%.0f%%" % (100.0 * w["members_female_owned"] / w["members"]) if w["members"] else "-"
        check("report: %s's women-owned share as the CLI's table prints it" % (w["regency"] or "total"), share,
              r.find_element(By.CSS_SELECTOR, "[data-col=members_female_owned]").text)
    wide = js(d, "const w = document.querySelector('#report-body .table-wrap'); return [w.scrollWidth, w.clientWidth]")
    truthy("report: the table fits a 1280-pixel screen without scrolling", wide[0] <= wide[1] + 1, wide)
    shot_full(d, "report.png")

    # The CSV: sentra-cli report --csv, cell for cell.
    d.find_element(By.ID, "report-csv").click()
    f = downloaded(tmp, "laporan-18-%d.csv" % year)
    truthy("report CSV downloads", f is not None)
    if f:
        got = read_csv(f)
        cli_csv = list(csv.reader(io.StringIO(cli_report(PROVINCE, "--csv", "--year", str(year)))))
        check("report CSV: the same cells as sentra-cli report --csv", cli_csv, got)
        shutil.copy(f, os.path.join(OUT, "report.csv"))

    # Printed: the table alone, on one A4 landscape page.
    pdf = d.execute_cdp_cmd("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True})
    data = base64.b64decode(pdf["data"])
    with open(os.path.join(OUT, "report.pdf"), "wb") as fh:
        fh.write(data)
    pages = data.count(b"/Type /Page") - data.count(b"/Type /Pages")
    check("report print: one page", 1, pages)
    mediabox = [float(x) for x in data.split(b"/MediaBox [", 1)[1].split(b"]", 1)[0].split()]
    truthy("report print: A4 landscape (842 x 595 points)",
           abs(mediabox[2] - 841.9) < 2 and abs(mediabox[3] - 595.3) < 2, mediabox)
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    shown = js(d, "return ['top', 'report-controls', 'report-csv', 'report-print', 'report-table']"
                  ".map(i => document.getElementById(i).getClientRects().length > 0)")
    check("report print: no header, controls or buttons; the table", [False, False, False, False, True], shown)
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

    # English: the same numbers, English words and separators.
    d.find_element(By.ID, "lang").click()
    settled(d, lambda drv: drv.find_element(By.CSS_SELECTOR, "#report-table tfoot [data-col=name]").text == "Total")
    check("report in English: the value with the thousands comma",
          "Rp " + "{:,}".format(total["assistance_value"]),
          d.find_element(By.CSS_SELECTOR, "#report-table tfoot [data-col=assistance_value]").text)
    report_matches_cli(d, PROVINCE, year, "report in English")
    truthy("report in English: the title", "report %d" % year in d.find_element(By.ID, "report-title").text,
           d.find_element(By.ID, "report-title").text)
    d.find_element(By.ID, "lang").click()
    settled(d, lambda drv: drv.find_element(By.CSS_SELECTOR, "#report-table tfoot [data-col=name]").text == "Jumlah")
    return year


def report_district(d, year):
    """A district token's report: its own regency, the CLI's figures."""
    d.get(BASE + "/#/report?year=%d" % year)
    report_settled(d, year)
    want, rows = report_matches_cli(d, DISTRICT, year, "district report")
    check("district report: Lampung Barat alone, and the total", ["18.04", ""],
          [r.get_attribute("data-regency") for r in rows])
    truthy("district report: the title names the regency", "Lampung Barat (18.04)" in
           d.find_element(By.ID, "report-title").text, d.find_element(By.ID, "report-title").text)


def report_national(d, year):
    """A national token chooses the province."""
    d.get(BASE + "/#/report?year=%d" % year)
    settled(d, lambda drv: drv.find_elements(By.ID, "report-province") and drv.find_elements(By.ID, "report-empty"))
    ok("national report: asks for a province first")
    Select(d.find_element(By.ID, "report-province")).select_by_value("18")
    report_settled(d, year)
    check("national report: the province in the address", True, "province=18" in d.current_url)
    report_matches_cli(d, NATIONAL, year, "national report")


# ---------------------------------------------------------------- the district office

FORM = {
    "name": XSS, "commodity": "Kopi robusta", "main_product": "Kopi bubuk", "kbli_code": "10761",
    "formed_on": "2019-03-04", "address": "Jl. Contoh 1 (data uji)",
    "location.latitude": "-5.05", "location.longitude": "104.1",
}


def fill(d, name, value):
    el = d.find_element(By.CSS_SELECTOR, "[name='%s']" % name)
    if el.tag_name == "select":
        Select(el).select_by_value(value)
    elif el.get_attribute("type") == "date":
        js(d, "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'))", el, value)
    else:
        el.clear()
        el.send_keys(value)


def district_office(d, tmp):
    d.find_element(By.ID, "signout").click()
    WebDriverWait(d, 10).until(lambda drv: drv.find_elements(By.ID, "token"))
    check("sign out forgets the token", None, js(d, "return sessionStorage.getItem('sentra.token')"))
    sign_in(d, DISTRICT)
    check("district scope", "district", d.find_element(By.ID, "scope").get_attribute("data-role"))
    district_total = lambda: api("sentra.v1.StatsService/GetStatistics", {"groupBy": []}, DISTRICT)[1]["total"]["sentra"]
    before_total = district_total()
    truthy("district scope: Lampung Barat", "Lampung Barat" in d.find_element(By.ID, "scope").text)
    truthy("district scope: certain (WhoAmI), not inferred", "disimpulkan" not in d.find_element(By.ID, "scope").text)

    d.find_element(By.ID, "nav-new").click()
    settled(d, lambda drv: drv.find_elements(By.ID, "sentra-form"))
    for k, v in FORM.items():
        fill(d, k, v)
    fill(d, "sector_group", "SECTOR_GROUP_FOOD")
    fill(d, "status", "STATUS_DESIGNATED")            # designated, but no decree
    check("form: the district's regency is chosen", "18.04",
          Select(d.find_element(By.NAME, "regency_code")).first_selected_option.get_attribute("value"))
    row = d.find_elements(By.CSS_SELECTOR, "#figures-rows tr.fig-row")[0]
    row.find_element(By.CSS_SELECTOR, "input[data-col=business_units]").send_keys("3")   # < 5
    row.find_element(By.CSS_SELECTOR, "input[data-col=workers_male]").send_keys("4")
    d.find_element(By.ID, "form-save").click()
    settled(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#form-summary .error"))

    # The same request straight to the API: the page must show its words.
    year = int(row.find_element(By.CSS_SELECTOR, "input[data-col=year]").get_attribute("value"))
    body = {"sentra": {"name": XSS, "commodity": "Kopi robusta", "mainProduct": "Kopi bubuk",
                       "kbliCode": "10761", "kbliVersion": "KBLI_VERSION_2020", "formedOn": "2019-03-04",
                       "address": "Jl. Contoh 1 (data uji)", "location": {"latitude": -5.05, "longitude": 104.1},
                       "sectorGroup": "SECTOR_GROUP_FOOD", "status": "STATUS_DESIGNATED", "regencyCode": "18.04",
                       "figures": [{"year": year, "businessUnits": "3", "workersMale": "4"}]}}
    st, err = api("sentra.v1.SentraService/CreateSentra", body, DISTRICT)
    check("API: the invalid record is refused with 400", 400, st)
    want = violations(err)
    truthy("API: it names the fields", len(want) >= 2, want)
    shown = {}
    for el in d.find_elements(By.CSS_SELECTOR, ".field-error span"):
        shown.setdefault(el.text, 0)
        shown[el.text] += 1
    for field, desc in want:
        truthy("form: shows the API's error for %s" % field, desc in shown, "%r not in %r" % (desc, shown))
    decree_err = d.find_element(By.CSS_SELECTOR, ".field-error[data-for='decree.number']").text
    check("form: the decree number's error sits beside it",
          dict(want).get("decree.number"), decree_err)
    shot(d, "form-errors.png")
    check("the refused record changed nothing", before_total, district_total())

    # Fixed: the decree, and enough business units.
    fill(d, "decree.number", "B/99/KPTS/2024 (uji)")
    fill(d, "decree.date", "2024-01-15")
    fill(d, "decree.official", "Bupati Lampung Barat")
    units = row.find_element(By.CSS_SELECTOR, "input[data-col=business_units]")
    units.clear()
    units.send_keys("12")
    d.find_element(By.ID, "form-save").click()
    settled(d, lambda drv: drv.find_elements(By.ID, "record-name"))
    name = d.find_element(By.ID, "record-name")
    check("record: the name shows as the characters typed", XSS, name.text)
    check("record: as a text node, no element made of it", 0,
          js(d, "return document.querySelectorAll('#record img, img[src=x]').length"))
    try:
        d.switch_to.alert
        bad("no script ran from the name (an alert is open)")
    except NoAlertPresentException:
        ok("no script ran from the name")
    rid = d.find_element(By.ID, "record").get_attribute("data-id")
    st, rec = api("sentra.v1.SentraService/GetSentra", {"id": rid}, DISTRICT)
    check("API: the record is stored with that name", XSS, rec.get("name"))
    check("API: version 1", "1", rec.get("version"))
    shot(d, "record-xss.png")

    # In the list, searched for.
    d.get(BASE + "/#/?q=onerror")
    settled(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#sentra-table a.record-link"))
    check("list: the name as text", [XSS], table_names(d))
    check("one more sentra in the district", str(int(before_total) + 1), district_total())

    # Edit with the version read.
    d.get(BASE + "/#/sentra/%s/edit" % rid)
    settled(d, lambda drv: drv.find_elements(By.ID, "sentra-form"))
    fill(d, "commodity", "Kopi robusta petik merah")
    d.find_element(By.ID, "form-save").click()
    settled(d, lambda drv: drv.find_elements(By.ID, "record-name"))
    st, rec = api("sentra.v1.SentraService/GetSentra", {"id": rid}, DISTRICT)
    check("edit: stored", "Kopi robusta petik merah", rec.get("commodity"))
    check("edit: version 2", "2", rec.get("version"))
    check("edit: the name untouched", XSS, rec.get("name"))

    # A conflict: someone else saves first.
    d.get(BASE + "/#/sentra/%s/edit" % rid)
    settled(d, lambda drv: drv.find_elements(By.ID, "sentra-form"))
    st, _ = api("sentra.v1.SentraService/UpdateSentra",
                {"sentra": {"id": rid, "address": "Jl. Lain 2 (data uji)"}, "updateMask": ["address"],
                 "expectedVersion": "2"}, DISTRICT)
    check("API: the other edit lands", 200, st)
    fill(d, "main_product", "Kopi sangrai")
    d.find_element(By.ID, "form-save").click()
    settled(d, lambda drv: drv.find_elements(By.ID, "form-conflict"))
    conflict = d.find_element(By.ID, "form-conflict").text
    truthy("edit: the conflict is explained, with the server's version", "3" in conflict, conflict)
    st, rec = api("sentra.v1.SentraService/GetSentra", {"id": rid}, DISTRICT)
    check("edit: the stale edit changed nothing", "Kopi bubuk", rec.get("mainProduct"))
    return rid


def national_office(d):
    """A national token: provinces shaded across Indonesia, a province
    chosen by clicking its shape."""
    d.find_element(By.ID, "signout").click()
    WebDriverWait(d, 10).until(lambda drv: drv.find_elements(By.ID, "token"))
    sign_in(d, NATIONAL)
    check("national scope", "national", d.find_element(By.ID, "scope").get_attribute("data-role"))
    check("national: no create button", 0, len(d.find_elements(By.ID, "nav-new")))
    settled(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#map-body[data-drawn=yes]"))
    check("national: the region chart is per province", "GROUP_BY_PROVINCE",
          d.find_element(By.ID, "chart-regions").get_attribute("data-level"))
    lampung = d.find_element(By.CSS_SELECTOR, "#map-body path.shape[data-shape='18']")
    java = d.find_element(By.CSS_SELECTOR, "#map-body path.shape[data-shape='32']")
    truthy("national: Lampung shaded, Jawa Barat (no data) not",
           lampung.get_attribute("fill") != java.get_attribute("fill") and java.get_attribute("fill") == "#f3f3f3",
           (lampung.get_attribute("fill"), java.get_attribute("fill")))
    shot(d, "national.png")
    pt = own_point(d, "#map-body path.shape[data-shape='18']")
    truthy("national: Lampung's shape can be clicked", pt is not None)
    if pt:
        click_at(d, *pt)
        settled(d, lambda drv: "province=18" in drv.current_url and
                drv.find_elements(By.CSS_SELECTOR, "#map-body[data-drawn=yes]") and
                drv.find_element(By.ID, "chart-regions").get_attribute("data-level") == "GROUP_BY_REGENCY")
        check("national: Lampung's 15 regencies after the click", 15, len(chart_labels(d, "regions") or []))
        check("national: 74 sentra in Lampung now (the district added one)", "74", card(d, "ov-sentra"))


def english(d):
    d.get(BASE + "/#/")
    settled(d, lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#overview-cards .card")) == 7)
    d.find_element(By.ID, "lang").click()
    settled(d, lambda drv: drv.find_element(By.CSS_SELECTOR, "#overview h2").text == "Overview")
    ok("English: the interface switches")
    check("English: html lang", "en", js(d, "return document.documentElement.lang"))
    d.find_element(By.ID, "lang").click()
    settled(d, lambda drv: drv.find_element(By.CSS_SELECTOR, "#overview h2").text == "Ringkasan")
    ok("Bahasa Indonesia again")


def admin_refused(d):
    """An admin token (WhoAmI answers it: ROLE_ADMIN) reads no sentra: the
    sign-in says so and keeps nothing."""
    d.find_element(By.ID, "signout").click()
    WebDriverWait(d, 10).until(lambda drv: drv.find_elements(By.ID, "token"))
    d.find_element(By.ID, "token").send_keys(ADMIN)
    d.find_element(By.ID, "signin-submit").click()
    settled(d, lambda drv: "admin" in drv.find_element(By.ID, "signin-error").text.lower())
    truthy("admin: the sign-in says admin tokens manage tokens only",
           "Token admin" in d.find_element(By.ID, "signin-error").text,
           d.find_element(By.ID, "signin-error").text)
    check("admin: the token is not kept", None, js(d, "return sessionStorage.getItem('sentra.token')"))


def phone(d):
    d.set_window_size(390, 844)
    d.get(BASE + "/#/")
    settled(d, lambda drv: drv.find_elements(By.CSS_SELECTOR, "#map-body[data-drawn=yes]")
            and drv.find_elements(By.CSS_SELECTOR, "#sentra-table"))
    wide = js(d, "return [document.documentElement.scrollWidth, window.innerWidth]")
    truthy("phone: nothing wider than the screen", wide[0] <= wide[1] + 1, wide)
    shot(d, "dashboard-phone.png")
    shot_full(d, "dashboard-phone-full.png", 390)
    d.set_window_size(1280, 1000)


def main():
    tmp = tempfile.mkdtemp(prefix="sentra-web-")
    os.makedirs(os.path.join(tmp, "downloads"))
    d = None
    try:
        d = browser(tmp)
        year = [0]

        def report_step(drv, t):
            year[0] = report_page(drv, t)

        steps = [province_office, report_step, district_office,
                 lambda drv, _t: report_district(drv, year[0] or 2022), lambda drv, _t: phone(drv),
                 lambda drv, _t: national_office(drv), lambda drv, _t: report_national(drv, year[0] or 2022),
                 lambda drv, _t: english(drv), lambda drv, _t: admin_refused(drv)]
        for step in steps:
            try:
                step(d, tmp)
            except Exception:
                bad("%s ran to its end" % getattr(step, "__name__", "step"), traceback.format_exc())
                shot(d, "failure-%d.png" % failed)
        # Chromium logs every 4xx answer that fetch gets; these are the ones
        # this test asked for (the invalid create, the stale edit).
        errs = console_errors(d, ["/sentra.v1.SentraService/CreateSentra", "/sentra.v1.SentraService/UpdateSentra"])
        check("the browser console has no errors", [], errs)
    finally:
        if d:
            d.quit()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
