"""/docs in a real headless browser (Debian's chromium + chromedriver, driven by Selenium): the page renders every
route from the OpenAPI document, and a person can send requests from it — a matmul, an NDJSON stream, a 422 —
with the API key typed into the page when the gateway requires one. /docs and /openapi.json need no key.

FORZIUM_DOCS_SCREENSHOT=path saves a screenshot of the page after the matmul (the README's picture)."""
import json
import os
import shutil
import urllib.error
import urllib.request

import pytest

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

KEY = "docs-test-key-123"


def chromium_driver():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    assert binary and driver_path, "chromium and chromium-driver are installed by scripts/install-deps.sh --test"
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1600"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def panel(driver, method, path):
    """Opens the route's section and returns it."""
    section = driver.find_element(By.CSS_SELECTOR, f'details.op[data-method="{method}"][data-path="{path}"]')
    if not section.get_attribute("open"):
        section.find_element(By.TAG_NAME, "summary").click()
    return section


def send(driver, section, body=None, timeout=60):
    """Types `body` (if given) into the route's editor, presses Send, waits for the answer; returns (status, text)."""
    if body is not None:
        editor = section.find_element(By.CSS_SELECTOR, "textarea.req-body")
        editor.clear()
        editor.send_keys(body)
    status = section.find_element(By.CSS_SELECTOR, ".resp-status")
    driver.execute_script("arguments[0].removeAttribute('data-done')", status)
    section.find_element(By.CSS_SELECTOR, "button.send").click()
    WebDriverWait(driver, timeout).until(lambda d: status.get_attribute("data-done") == "1")
    return status.get_attribute("data-code"), section.find_element(By.CSS_SELECTOR, ".resp-body").get_attribute("textContent")


@pytest.fixture
def browser():
    driver = chromium_driver()
    try:
        yield driver
    finally:
        driver.quit()


def test_docs_page_sends_requests_from_the_browser(start_gateway, browser):
    gateway = start_gateway("--api-keys", KEY)
    base = f"http://127.0.0.1:{gateway.port}"
    # The page and the document hold no secret: reachable without a key. Engine routes are not.
    assert get(base + "/docs")[0] == 200
    status, raw = get(base + "/openapi.json")
    assert status == 200
    document = json.loads(raw)
    assert get(base + "/metrics")[0] == 401

    browser.get(base + "/docs")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    # Every operation of the document is on the page.
    expected = {(m.upper(), p) for p, item in document["paths"].items() for m in item if m in ("get", "post")}
    shown = {(e.get_attribute("data-method"), e.get_attribute("data-path"))
             for e in browser.find_elements(By.CSS_SELECTOR, "details.op")}
    assert shown == expected
    # Markdown in descriptions is rendered (code spans), not shown as backticks.
    compute = panel(browser, "POST", "/compute")
    assert compute.find_elements(By.CSS_SELECTOR, ".body > div code")
    assert "`" not in compute.find_element(By.CSS_SELECTOR, ".body > div").text
    # Header parameters are listed.
    table_text = compute.find_element(By.TAG_NAME, "table").text
    assert "X-Request-ID" in table_text and "X-Forzium-Timeout-Ms" in table_text

    # Without the key the gateway says 401, shown on the page.
    matmul = '{"data": [[1, 2], [3, 4]], "operation": "matmul", "parameters": {"matrix_b": [[5, 6], [7, 8]]}}'
    code, text = send(browser, compute, matmul)
    assert code == "401", text
    assert json.loads(text)["status"] == 401

    key_field = browser.find_element(By.ID, "api-key")
    assert key_field.is_displayed()
    key_field.send_keys(KEY)
    code, text = send(browser, compute, matmul)
    assert code == "200", text
    answer = json.loads(text)
    assert answer["result"] == [[19.0, 22.0], [43.0, 50.0]] and answer["operation"] == "matmul"
    headers_text = compute.find_element(By.CSS_SELECTOR, ".resp-headers").get_attribute("textContent")
    assert "x-forzium-engine:" in headers_text.lower() and "x-request-id:" in headers_text.lower()

    # The editor starts with an example the gateway accepts (per operation where the body is a union).
    fresh = panel(browser, "POST", "/v1/transpose")
    code, text = send(browser, fresh)
    assert code == "200", text
    assert "result" in json.loads(text)
    selects = compute.find_elements(By.CSS_SELECTOR, "select.example")
    if selects:
        choice = Select(selects[0])
        names = [o.text for o in choice.options]
        assert "matmul" in names, names
        choice.select_by_visible_text("matmul")
        code, text = send(browser, compute)
        assert code == "200", text
        assert json.loads(text)["operation"] == "matmul"
        if os.environ.get("FORZIUM_DOCS_SCREENSHOT"):
            browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", selects[0])
            browser.execute_script("window.scrollBy(0, -160)")
            browser.save_screenshot(os.environ["FORZIUM_DOCS_SCREENSHOT"])

    # A schema violation: 422 problem+json with the pointer, shown as such.
    code, text = send(browser, compute, '{"data": [[1, 2], [3]], "operation": "sum"}')
    assert code == "422"
    problem = json.loads(text)
    assert problem["status"] == 422 and problem["errors"][0]["pointer"].startswith("/data")

    # The NDJSON stream: every row line, then the final line.
    stream = panel(browser, "POST", "/stream")
    code, text = send(browser, stream, '{"data": [[1, 2], [3, 4], [5, 6]], "operation": "multiply", "parameters": {"factor": 2}}')
    assert code == "200", text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert [line.get("values") for line in lines[:-1]] == [[2.0, 4.0], [6.0, 8.0], [10.0, 12.0]]
    assert lines[-1]["done"] is True

    # A GET route with no body.
    health = panel(browser, "GET", "/ready")
    code, text = send(browser, health)
    assert code == "200" and json.loads(text)["status"] == "ready"

    severe = [entry for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE" and "401" not in entry["message"] and "422" not in entry["message"]]
    assert not severe, severe


def test_docs_page_has_no_key_field_without_keys(start_gateway, browser):
    gateway = start_gateway()
    browser.get(f"http://127.0.0.1:{gateway.port}/docs")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    assert not browser.find_element(By.ID, "api-key").is_displayed()
    section = panel(browser, "POST", "/v1/sum")
    code, text = send(browser, section, '{"data": [[1e308, 1e308]]}')
    assert code == "200"
    assert json.loads(text)["result"] is None  # a non-finite result is null
