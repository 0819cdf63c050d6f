"""Under the Content-Security-Policy, Chromium refuses nothing the pages need: no CSP
violation is reported in the console while pages load, htmx swaps a filtered list, and the
statement's Print button (its handler moved from onclick="" to static/js) still works."""

import re

import pytest
from playwright.sync_api import expect

from notifications.models import Notification
from tests.browser.ui import PASSWORD
from tests.factories import CaseFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Before any page script: record each violation the page sees, and the Print button's call
# (a headless browser has no print dialog to look at).
WATCH_JS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`
  );
});
window.__printed = 0;
window.print = () => { window.__printed += 1; };
"""


@pytest.fixture
def console(page):
    messages = []
    page.on("console", lambda message: messages.append((message.type, message.text)))
    page.add_init_script(WATCH_JS)
    return messages


def csp_problems(page, console) -> list[str]:
    problems = [
        text
        for kind, text in console
        if "Content Security Policy" in text or "Content-Security-Policy" in text
    ]
    return problems + page.evaluate("window.__cspViolations")


def test_pages_load_without_a_csp_violation(ui, people, console):
    page = ui.page
    case = CaseFactory(state="step_8", money=True, actors=people)
    seen = {}

    ui.open("/login/")  # anonymous page first
    seen["/login/"] = csp_problems(page, console)
    ui.login("car")
    for path in (
        "/work/",
        "/cases/",
        f"/cases/{case.pk}/",
        f"/cases/{case.pk}/statement/",
        "/car/",
        "/partners/",
        f"/partners/{case.partner.pk}/",
    ):
        console.clear()
        ui.open(path)
        seen[path] = csp_problems(page, console)

    assert {path: problems for path, problems in seen.items() if problems} == {}
    # The header was there to be obeyed.
    response = page.goto("/work/")
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_the_print_button_works_without_inline_script(ui, people, console):
    case = CaseFactory(state="step_8", money=True, actors=people)
    ui.login("car")
    ui.open(f"/cases/{case.pk}/statement/")
    ui.page.get_by_role("button", name="Print").click()
    assert ui.page.evaluate("window.__printed") == 1
    assert csp_problems(ui.page, console) == []


def test_htmx_filters_the_case_list_under_the_policy(ui, people, console):
    CaseFactory(state="step_4", actors=people, partner_kwargs={"display_name": "Contoso Ltd"})
    CaseFactory(state="step_4", actors=people, partner_kwargs={"display_name": "Fabrikam Inc"})
    page = ui.page
    ui.login("manager")
    ui.open("/cases/")
    rows = page.locator("#case-table tbody tr")
    expect(rows).to_have_count(2)
    with page.expect_response(re.compile(r"/cases/\?")) as swapped:
        page.locator("#case-q").press_sequentially("Contoso")
    assert swapped.value.request.headers.get("hx-request") == "true"  # htmx, not a reload
    expect(rows).to_have_count(1)
    expect(page.locator("#case-table")).to_contain_text("Contoso")
    # htmx added no <style> of its own (includeIndicatorStyles is off).
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    assert csp_problems(page, console) == []


def test_the_admin_works_under_the_policy(ui, people, console):
    UserFactory(username="root", is_staff=True, is_superuser=True, password=PASSWORD)
    case = CaseFactory(state="step_4", actors=people)
    ui.login("root")
    for path in (
        "/admin/",
        "/admin/offboarding/case/",
        f"/admin/offboarding/case/{case.pk}/change/",
    ):
        console.clear()
        response = ui.page.goto(path)
        assert response.ok, path
        assert csp_problems(ui.page, console) == [], path


def test_the_inbox_loads_without_a_csp_violation(ui, people, console):
    Notification.objects.create(
        recipient=people["cam"], kind="step_due", title="Due", body="Line one\nLine two"
    )
    ui.login("cam")
    console.clear()
    ui.open("/inbox/")
    assert csp_problems(ui.page, console) == []


def test_bootstraps_menu_opens_on_a_phone_under_the_policy(ui, people, console):
    page = ui.page
    page.set_viewport_size({"width": 390, "height": 844})
    ui.login("car")
    console.clear()
    toggler = page.get_by_role("button", name="Toggle navigation")
    expect(toggler).to_be_visible()
    toggler.click()  # Bootstrap's collapse animates the menu open with script-set styles
    expect(toggler).to_have_attribute("aria-expanded", "true")
    ui.nav("Cases")
    expect(ui.heading()).to_have_text("Offboarding cases")
    assert csp_problems(page, console) == []
