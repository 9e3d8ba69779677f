"""The dashboard in a real headless Chromium, driven by selenium (tests/cli/serve_browser.rs
prepares the data, starts `repo serve`, runs this, then checks what it did on disk and in
MongoDB). Every step acts as a user would: typing, clicking links and buttons, pressing
Enter on a timeline moment. A screenshot of each page goes to $SHOTS.

Prints one JSON object on stdout with what the Rust side must verify."""

import datetime
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

E = os.environ
BASE = E["BASE"]
SHOTS = E["SHOTS"]
DOWNLOADS = E["DOWNLOADS"]
out = {}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def browser(width=1280, height=900):
    """A headless Chromium at this window size (the system's, from Debian)."""
    o = webdriver.ChromeOptions()
    o.binary_location = E["CHROMIUM"]
    # No background networking: this machine's closed network refuses it, noisily.
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--no-first-run", "--disable-quic", f"--window-size={width},{height}"):
        o.add_argument(a)
    o.add_experimental_option("prefs", {
        "download.default_directory": DOWNLOADS,
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    d = webdriver.Chrome(service=Service(E["CHROMEDRIVER"]), options=o)
    d.set_page_load_timeout(120)
    # A click that navigates may return before the next page is there: lookups wait for it.
    d.implicitly_wait(10)
    d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": DOWNLOADS})
    return d


def shot(d, name):
    d.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def check(cond, what, d=None):
    if not cond:
        if d is not None:
            shot(d, "failure")
            log(d.current_url)
            log(d.page_source[:5000])
        raise AssertionError(what)


def sign_in(d, token):
    d.get(BASE + "/")
    check("/login" in d.current_url, "not signed in goes to the sign-in page", d)
    field = d.find_element(By.ID, "token")
    check(d.switch_to.active_element == field, "the token field has the focus", d)
    field.send_keys(token)
    field.send_keys(Keys.ENTER)
    check(d.current_url.rstrip("/") == BASE, "signed in to the overview", d)


def wait_job(d, timeout=180):
    """On a job page (which reloads itself while the job runs): its final state."""
    # A click on a form button returns before the browser has followed the redirect.
    end = time.time() + 30
    while "/jobs/" not in d.current_url and time.time() < end:
        time.sleep(0.1)
    check("/jobs/" in d.current_url, "on a job page", d)
    end = time.time() + timeout
    while time.time() < end:
        try:
            state = d.find_element(By.CSS_SELECTOR, "[data-state]").get_attribute("data-state")
        except Exception:
            state = None
        if state in ("ok", "warnings", "failed", "cancelled"):
            return state
        time.sleep(0.5)
    check(False, "the job finished in time", d)


def unlabelled(d):
    """Visible form controls without a label."""
    return d.execute_script(
        "return Array.from(document.querySelectorAll('input:not([type=hidden]),select'))"
        ".filter(e => !e.labels || e.labels.length === 0).map(e => e.name)")


def main():
    d = browser()
    try:
        operator(d)
    finally:
        d.quit()
    v = browser()
    try:
        viewer(v)
    finally:
        v.quit()
    p = browser(390, 844)
    try:
        phone(p)
    finally:
        p.quit()
    print(json.dumps(out))


def operator(d):
    sign_in(d, E["TOKEN_OPERATOR"])
    shot(d, "01-overview-before")
    rows = d.find_elements(By.CSS_SELECTOR, "tr[data-plan]")
    check({r.get_attribute("data-plan") for r in rows} >= {"files", "broken", "db"}, "every plan listed", d)

    # Run a plan and watch it finish on its live page.
    d.find_element(By.CSS_SELECTOR, "button[aria-label='Run plan files now']").click()
    state = wait_job(d)
    shot(d, "02-job-finished")
    check(state == "ok", f"the files plan succeeded, not {state}", d)

    # A failing plan: red, first, with its error.
    d.get(BASE + "/")
    d.find_element(By.CSS_SELECTOR, "button[aria-label='Run plan broken now']").click()
    state = wait_job(d)
    check(state == "failed", f"the broken plan failed, not {state}", d)
    check(d.find_element(By.CSS_SELECTOR, "[data-error]").text.strip() != "", "the job shows its error", d)
    d.find_element(By.LINK_TEXT, "Overview").click()
    first = d.find_element(By.CSS_SELECTOR, "tr[data-plan]")
    check(first.get_attribute("data-plan") == "broken", "the failing plan comes first", d)
    check(first.find_element(By.CSS_SELECTOR, "[data-health]").get_attribute("data-health") == "red", "red", d)
    err = first.find_element(By.CSS_SELECTOR, "[data-error]").text
    check(E["BROKEN_PATH"] in err, f"the overview shows the error ({err!r})", d)
    shot(d, "03-overview-failing-red")

    # Snapshots: filter by plan, open the newest, browse, download a file.
    d.find_element(By.LINK_TEXT, "Snapshots").click()
    Select(d.find_element(By.ID, "plan")).select_by_value("files")
    d.find_element(By.XPATH, "//button[text()='Filter']").click()
    end = time.time() + 30
    while "plan=files" not in d.current_url and time.time() < end:
        time.sleep(0.1)
    check("plan=files" in d.current_url, "the filter is in the address", d)
    links = d.find_elements(By.CSS_SELECTOR, "a[data-snapshot]")
    check(len(links) == 1, f"one snapshot of plan files ({len(links)})", d)
    shot(d, "04-snapshots")
    links[0].click()
    for part in E["BROWSE"].strip("/").split("/"):
        # Into each directory by its entry in the listing (the link reads "name/").
        d.find_element(By.XPATH, f"//table//a[text()='{part}/']").click()
    shot(d, "05-snapshot-browse")
    before = set(os.listdir(DOWNLOADS))
    d.find_element(By.CSS_SELECTOR, f"a[data-download='{E['DOWNLOAD']}']").click()
    name = os.path.basename(E["DOWNLOAD"])
    end = time.time() + 60
    while time.time() < end and not os.path.exists(os.path.join(DOWNLOADS, name)):
        time.sleep(0.2)
    check(os.path.exists(os.path.join(DOWNLOADS, name)), f"{name} downloaded ({os.listdir(DOWNLOADS)} vs {before})", d)
    out["downloaded"] = os.path.join(DOWNLOADS, name)
    snapshot_page = d.current_url

    d.find_element(By.LINK_TEXT, "Compare with its parent").click()
    shot(d, "06-diff")
    d.get(snapshot_page)

    # Restore the directory through the preview.
    d.find_element(By.PARTIAL_LINK_TEXT, "Restore " + E["BROWSE"]).click()
    check(d.find_element(By.ID, "include").get_attribute("value") == E["BROWSE"], "the path is filled in", d)
    check(unlabelled(d) == [], f"every control labelled: {unlabelled(d)}", d)
    d.find_element(By.ID, "target").send_keys(E["RESTORE_TARGET"])
    d.find_element(By.ID, "preview").click()
    text = d.find_element(By.CSS_SELECTOR, "[data-preview]").text
    check(f"{E['RESTORE_FILES']} files" in text, f"the preview counts the files: {text}", d)
    check(not os.path.exists(E["RESTORE_TARGET"]), "a preview writes nothing", d)
    shot(d, "07-restore-preview")
    d.find_element(By.ID, "restore-now").click()
    state = wait_job(d)
    shot(d, "08-restore-finished")
    check(state == "ok", f"the restore succeeded, not {state}", d)

    # MongoDB: pick a moment on the timeline, preview, restore.
    d.find_element(By.LINK_TEXT, "Restore").click()
    lo = datetime.datetime.fromisoformat(E["PICK_AFTER"])
    hi = datetime.datetime.fromisoformat(E["PICK_BEFORE"])
    moments = d.find_elements(By.CSS_SELECTOR, "svg.tl a[data-at]")
    check(moments, "the timeline offers moments", d)
    shot(d, "09-restore-timeline")
    pick = None
    for a in moments:
        at = datetime.datetime.fromisoformat(a.get_attribute("data-at").replace("Z", "+00:00"))
        if lo <= at <= hi:
            pick = a
            break
    check(pick is not None, f"a moment between {lo} and {hi} on the timeline", d)
    at = pick.get_attribute("data-at")
    pick.send_keys(Keys.ENTER)  # a timeline moment is a link: keyboard works as well as a click
    end = time.time() + 10
    while time.time() < end and "at=" not in d.current_url:
        time.sleep(0.1)
    check(d.find_element(By.ID, "at").get_attribute("value") == at, "the moment is in the form", d)
    check(d.find_element(By.CSS_SELECTOR, "input[name=mode][value=mongodb]").is_selected(), "MongoDB chosen", d)
    Select(d.find_element(By.ID, "mongodb_plan")).select_by_value("db")
    d.find_element(By.ID, "namespaces").send_keys(E["MONGO_DB"] + ".*")
    d.find_element(By.ID, "rename").send_keys(f"{E['MONGO_DB']}.*:{E['MONGO_TARGET_DB']}.*")
    d.find_element(By.ID, "preview").click()
    text = d.find_element(By.CSS_SELECTOR, "[data-preview]").text
    check("collections" in text, f"the MongoDB preview: {text}", d)
    shot(d, "10-mongodb-preview")
    d.find_element(By.ID, "restore-now").click()
    state = wait_job(d)
    shot(d, "11-mongodb-restored")
    check(state == "ok", f"the MongoDB restore succeeded, not {state}", d)
    out["mongo_at"] = at
    out["mongo_preview_url"] = ""

    # History and storage.
    d.find_element(By.LINK_TEXT, "History").click()
    shot(d, "12-history")
    d.find_element(By.CSS_SELECTOR, "table a[href^='/history/']").click()
    check(d.find_element(By.CSS_SELECTOR, "[data-report]").text.strip() != "", "a record's report", d)
    shot(d, "13-history-record")
    d.find_element(By.LINK_TEXT, "Storage").click()
    check(d.find_element(By.CSS_SELECTOR, "[data-size]").text.strip() != "", "the size", d)
    check(d.find_element(By.CSS_SELECTOR, "[data-check]").get_attribute("data-check") == "ok", "the latest check", d)
    shot(d, "14-storage")
    out["restore_query"] = d.current_url


def viewer(d):
    sign_in(d, E["TOKEN_VIEWER"])
    check(not d.find_elements(By.XPATH, "//button[text()='Run now']"), "a viewer gets no Run button", d)
    d.get(BASE + "/restore/preview?mode=files&include=" + E["BROWSE"] + "&target=" + E["RESTORE_TARGET2"])
    check(d.find_elements(By.CSS_SELECTOR, "[data-preview]"), "a viewer can preview", d)
    check(not d.find_elements(By.ID, "restore-now"), "a viewer gets no Restore button", d)
    check("needs an operator" in d.page_source, "and is told why", d)
    shot(d, "15-viewer-preview")


def phone(d):
    # Headless windows are at least 500 px wide: emulate a 390 px phone screen instead.
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    sign_in(d, E["TOKEN_VIEWER"])
    for path, name in (("/", "16-phone-overview"), ("/snapshots", "17-phone-snapshots"), ("/restore", "18-phone-restore"),
                       ("/history", "19-phone-history"), ("/storage", "20-phone-storage")):
        d.get(BASE + path)
        inner, wide = d.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
        check(inner == 390, f"the phone viewport is 390 px ({inner})", d)
        check(wide <= inner, f"{path} fits a phone's width: {wide}px in {inner}px (wide tables scroll by themselves)", d)
        shot(d, name)


if __name__ == "__main__":
    main()
