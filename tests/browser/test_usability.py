"""Accessibility and usability basics beyond the journeys: widths, keyboard, assets.

(The journeys check every page they open for one h1, landmarks and labelled fields.)
"""

import os
import re
import shutil

import pytest
from playwright.sync_api import expect

from tests.browser.ui import ARTIFACTS, REPO, focus_ring, no_horizontal_scroll
from tests.factories import CaseFactory, PartnerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

README_SCREENSHOT = REPO / "docs" / "screenshots" / "case-page.png"


def assert_fits(page, where: str) -> None:
    widths = no_horizontal_scroll(page)
    assert widths["scrollWidth"] <= widths["innerWidth"], f"{where} scrolls sideways: {widths}"


def test_case_page_at_desktop_and_phone_widths(ui, people):
    partner = PartnerFactory(
        cam=people["cam"],
        display_name="Northwind Solutions",
        legal_name="Northwind Solutions LLC",
        beta=True,
    )
    case = CaseFactory(partner=partner, state="step_7", money=True, actors=people)
    page = ui.page

    ui.login("car")
    ui.case(case.pk)
    assert_fits(page, "case page at 1280 px")
    expect(page.locator(".swimlane table")).to_be_visible()
    expect(page.locator("ol.list-group-numbered")).to_be_hidden()
    submit = page.get_by_role("button", name="Complete step 7")
    submit.scroll_into_view_if_needed()
    expect(submit).to_be_visible()
    expect(submit).to_be_enabled()
    submit.click(trial=True)  # every actionability check of a real click: visible, on top
    page.evaluate("window.scrollTo(0, 0)")
    shot = ui.shoot("case-page-1280")
    # The README's picture; refreshed only on request, as its dates change with every run.
    if not README_SCREENSHOT.exists() or os.environ.get("PARTNEROPS_UPDATE_SCREENSHOTS"):
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_SCREENSHOT)
    assert "docs/screenshots/case-page.png" in (REPO / "README.md").read_text()

    # A phone: the swimlane becomes a list, nothing scrolls sideways, and the step can be
    # completed with a tap.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    ui.check()
    assert_fits(page, "case page at 390 px")
    expect(page.locator(".swimlane table")).to_be_hidden()
    current = page.locator("ol.list-group-numbered li.step-current")
    expect(current).to_have_count(1)
    expect(current).to_contain_text("Money on the table?")
    ui.shoot("case-page-390")
    page.get_by_label("Yes: open commissions, orders or payouts").check()
    page.get_by_label("I have checked the open balance shown above").check()
    submit = page.get_by_role("button", name="Complete step 7")
    submit.scroll_into_view_if_needed()
    expect(submit).to_be_in_viewport()
    ui.complete_step(7)
    expect(page.locator("ol.list-group-numbered li.step-current")).to_contain_text(
        "Pay out and close"
    )
    ui.money_form("Record a payment")
    assert_fits(page, "case page at step 8 (payment form) at 390 px")
    expect(page.get_by_role("button", name="Record payment")).to_be_visible()
    ui.shoot("case-page-390-step-8")

    # The other pages at 390 px, reached through the collapsed menu.
    for link, heading in (
        ("My work", "My work"),
        ("Cases", "Offboarding cases"),
        ("Partners", "Partners"),
        ("CAR console", "CAR console"),
        ("Inbox", "Inbox"),
    ):
        ui.nav(link)
        expect(ui.heading()).to_have_text(heading)
        assert_fits(page, f"{link} at 390 px")
    ui.open(f"/partners/{partner.pk}/")
    assert_fits(page, "partner page at 390 px")
    ui.open(f"/cases/{case.pk}/statement/")
    assert_fits(page, "final statement at 390 px")
    ui.assert_accessible()


def visible_focus(info: dict) -> bool:
    outline = info["outlineStyle"] != "none" and info["outlineWidth"] > 0
    return outline or info["boxShadow"] != "none"


def test_keyboard_focus_is_visible_and_login_works_from_the_keyboard(ui, people):
    case = CaseFactory(
        partner=PartnerFactory(cam=people["cam"], display_name="Falcon Tax Services"),
        state="step_4",
        company=False,
        actors=people,
    )
    page = ui.page
    ui.open("/login/")

    # The username field has the focus on arrival; Tab and Shift+Tab move through the rest.
    seen = [focus_ring(page)]
    for key in ("Tab", "Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab", "Shift+Tab"):
        page.keyboard.press(key)
        seen.append(focus_ring(page))
    assert [(info["tag"], info["text"]) for info in seen] == [
        ("input", "username"),
        ("input", "password"),
        ("button", "Log in"),
        ("input", "password"),
        ("input", "username"),
        ("a", "PartnerOps"),
        ("a", "Skip to content"),
    ]
    assert seen[-1]["width"] > 1 and seen[-1]["height"] > 1, "the skip link stays invisible"
    for info in seen:
        assert visible_focus(info), f"no visible focus on {info}"

    # Log in without the mouse.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type("cam")
    page.keyboard.press("Tab")
    page.keyboard.type("partnerops-demo")
    page.keyboard.press("Enter")
    expect(ui.heading()).to_have_text("My work")
    ui.user = "cam"

    ui.case(case.pk)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    expect(page).to_have_url(re.compile(r"#main$"))
    seen = []
    for _ in range(30):  # through the page's content to its end
        page.keyboard.press("Tab")
        info = focus_ring(page)
        if info["tag"] == "body":
            break
        seen.append(info)
    stops = [(info["tag"], info["text"]) for info in seen]
    # The skip link led past the navigation: the first stop is inside the page's content.
    assert stops[0] == ("a", "Partner record"), stops
    assert ("button", "Complete step 4") in stops, stops
    assert ("button", "Withdraw") in stops, stops
    assert {"a", "button", "input", "textarea"} <= {tag for tag, _ in stops}, stops
    for info in seen:
        assert visible_focus(info), f"no visible focus on {info}"
    ui.assert_accessible()


def test_pages_load_their_assets_from_this_server_only(ui, people, network, live_server):
    case = CaseFactory(state="step_9", money=True, actors=people)
    page = ui.page

    ui.login("manager")
    for name, path in (
        ("my-work", "/work/"),
        ("case-list", "/cases/"),
        ("partner-list", "/partners/"),
        ("partner", f"/partners/{case.partner_id}/"),
        ("case-step-9", f"/cases/{case.pk}/"),
        ("statement", f"/cases/{case.pk}/statement/"),
        ("car-console", "/car/"),
        ("payments-after-offboard", "/reports/payments-after-offboard/"),
        ("inbox", "/inbox/"),
        ("preferences", "/inbox/preferences/"),
    ):
        ui.open(path)
        ui.shoot(f"manager-{name}")
    # Bootstrap and htmx arrived and work: from this server, with nothing else asked for.
    assert page.evaluate("typeof window.bootstrap.Collapse") == "function"
    assert page.evaluate("typeof window.htmx.ajax") == "function"
    navbar = page.locator("nav.navbar")
    expect(navbar).to_have_css("background-color", "rgb(33, 37, 41)")
    statuses = {url: status for url, status in network["responses"] if "/static/" in url}
    for asset in ("bootstrap/css/bootstrap.min.css", "bootstrap/js/bootstrap.bundle.min.js"):
        assert any(url.endswith(asset) and status == 200 for url, status in statuses.items())
    assert any("htmx" in url and status == 200 for url, status in statuses.items()), statuses
    assert all(status < 400 for status in statuses.values()), statuses
    hosts = {re.match(r"^[a-z]+://([^/:]+)", url).group(1) for url in network["requests"]}
    assert hosts == {"127.0.0.1"}, hosts
    assert live_server.url.startswith("http://127.0.0.1:")
    ui.assert_accessible()
    assert (ARTIFACTS / "manager-inbox.png").exists()
