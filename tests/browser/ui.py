"""What a person does and sees in the browser, as small helpers the journeys share.

Every page the helpers open is checked for the accessibility basics: one h1, the header/nav
and main landmarks, a language, and a label on every visible form field.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
PASSWORD = "partnerops-demo"

# The accessibility basics of the page in the browser, as the browser sees them.
PAGE_BASICS_JS = """() => {
  const visible = (el) => {
    const style = getComputedStyle(el);
    return el.getClientRects().length > 0 && style.visibility !== 'hidden'
      && style.display !== 'none';
  };
  const text = (el) => (el ? el.textContent.trim() : '');
  const skip = new Set(['hidden', 'submit', 'button', 'reset', 'image']);
  const unlabelled = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (skip.has((el.getAttribute('type') || '').toLowerCase()) || !visible(el)) continue;
    // el.labels is what the browser itself associates: a <label for> that resolves to this
    // very element (so a duplicated id leaves the second field unlabelled) or a wrapping one.
    const labelled = [...el.labels].some((label) => text(label));
    const ariaLabel = !!(el.getAttribute('aria-label') || '').trim();
    const ids = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean);
    const labelledBy = ids.length > 0 && ids.every((id) => text(document.getElementById(id)));
    if (!(labelled || ariaLabel || labelledBy)) {
      const sameId = el.id ? document.querySelectorAll(`[id="${CSS.escape(el.id)}"]`).length : 0;
      unlabelled.push(
        `${el.outerHTML.slice(0, 140)}${sameId > 1 ? ` (id used ${sameId} times)` : ''}`
      );
    }
  }
  return {
    h1: [...document.querySelectorAll('h1')].map(text),
    banner: document.querySelectorAll('header, nav').length,
    main: document.querySelectorAll('main').length,
    lang: document.documentElement.lang,
    title: document.title,
    unlabelled,
  };
}"""

SWIMLANE_JS = """() => Object.fromEntries(
  [...document.querySelectorAll('.swimlane td.step')].map((td) => [
    parseInt(td.title, 10),
    [...td.classList].find((c) => c.startsWith('step-')).slice('step-'.length),
  ])
)"""

FOCUS_JS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    tag: el.tagName.toLowerCase(),
    text: (el.textContent || el.value || el.name || '').trim().slice(0, 40),
    outlineStyle: style.outlineStyle,
    outlineWidth: parseFloat(style.outlineWidth) || 0,
    boxShadow: style.boxShadow,
    width: box.width,
    height: box.height,
  };
}"""


def page_basics_problems(page: Page) -> list[str]:
    """What is wrong with the page's accessibility basics, as sentences (empty: nothing)."""
    # A click on a link returns once the next page has started loading: wait until it is
    # whole (a busy machine showed a document still without its <html> element).
    page.wait_for_function("document.readyState === 'complete' && document.documentElement")
    basics = page.evaluate(PAGE_BASICS_JS)
    where = f"{urlsplit(page.url).path} ({basics['title']})"
    problems = []
    if len(basics["h1"]) != 1:
        problems.append(f"{where}: expected one h1, found {basics['h1']}")
    if not basics["banner"]:
        problems.append(f"{where}: no header/nav landmark")
    if basics["main"] != 1:
        problems.append(f"{where}: expected one main landmark, found {basics['main']}")
    if basics["lang"] != "en":
        problems.append(f"{where}: <html lang> is {basics['lang']!r}")
    problems += [f"{where}: form field without a label: {html}" for html in basics["unlabelled"]]
    return problems


def no_horizontal_scroll(page: Page) -> dict:
    return page.evaluate(
        "() => ({scrollWidth: document.documentElement.scrollWidth, innerWidth: innerWidth})"
    )


def focus_ring(page: Page) -> dict:
    return page.evaluate(FOCUS_JS)


class UI:
    """One person at the browser: logs in, clicks through pages, reads what is shown."""

    def __init__(self, page: Page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.user = None
        # Accessibility problems of every page seen, reported together at the end of the
        # test (assert_accessible), so one problem does not hide the rest of the journey.
        self.problems: list[str] = []

    # Navigation ------------------------------------------------------------------------

    def open(self, path: str) -> Page:
        response = self.page.goto(path)
        assert response is not None and response.ok, f"GET {path}: {response and response.status}"
        self.check()
        return self.page

    def check(self) -> None:
        for problem in page_basics_problems(self.page):
            if problem not in self.problems:
                self.problems.append(problem)

    def assert_accessible(self) -> None:
        problems, self.problems = self.problems, []
        assert not problems, "accessibility problems:\n" + "\n".join(problems)

    def field(self, label: str):
        """The form field labelled `label` (a required field's label ends with '*')."""
        return self.page.get_by_label(re.compile(rf"^\s*{re.escape(label)}\s*\*?\s*$"))

    def nav(self, name: str) -> None:
        """Follow a link of the main navigation, opening the collapsed menu on a phone."""
        toggler = self.page.get_by_role("button", name="Toggle navigation")
        if toggler.is_visible() and toggler.get_attribute("aria-expanded") != "true":
            toggler.click()
        nav = self.page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name=re.compile(rf"^{re.escape(name)}\b")).click()
        self.check()

    def heading(self):
        return self.page.get_by_role("heading", level=1)

    def shoot(self, name: str, *, full_page: bool = True) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=path, full_page=full_page)
        return path

    # Who is at the keyboard --------------------------------------------------------------

    def login(self, username: str) -> None:
        if self.user is not None:
            self.logout()
        self.open("/login/")
        expect(self.heading()).to_have_text("Log in to PartnerOps")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.heading()).to_have_text("My work")
        self.check()
        self.user = username

    def logout(self) -> None:
        toggler = self.page.get_by_role("button", name="Toggle navigation")
        if toggler.is_visible() and toggler.get_attribute("aria-expanded") != "true":
            toggler.click()
        self.page.get_by_role("button", name="Log out").click()
        expect(self.heading()).to_have_text("Log in to PartnerOps")
        self.user = None

    # Pages ---------------------------------------------------------------------------------

    def case(self, pk: int) -> Page:
        self.open(f"/cases/{pk}/")
        expect(self.heading()).to_contain_text(f"case #{pk}")
        return self.page

    def case_pk(self) -> int:
        match = re.search(r"/cases/(\d+)/$", self.page.url)
        assert match, f"not on a case page: {self.page.url}"
        return int(match.group(1))

    def partner_page(self, name: str) -> None:
        self.nav("Partners")
        expect(self.heading()).to_have_text("Partners")
        self.page.get_by_role("link", name=name, exact=True).click()
        expect(self.heading()).to_have_text(name)
        self.check()

    def message(self, text: str):
        """A page message (role=alert) containing `text`."""
        alert = self.page.get_by_role("alert").filter(has_text=text)
        expect(alert).to_be_visible()
        return alert

    def complete_step(self, number: int) -> None:
        self.page.get_by_role("button", name=f"Complete step {number}").click()
        self.message(f"Step {number} ·")
        self.check()

    def money_form(self, title: str):
        """Open one of step 8's money forms by its button in the money panel (htmx draws it
        there, one at a time) and return the form."""
        money = self.page.get_by_role("region", name="Money on the table")
        money.get_by_role("link", name=title, exact=True).click()
        drawn = self.page.locator("#money-form")
        expect(drawn.get_by_role("heading", name=title, exact=True)).to_be_visible()
        self.check()
        return drawn.locator("form")

    def inbox_entry(self, text: str):
        """Open the inbox from the navigation and return the entry containing `text`."""
        expect(self.page.locator("#unread-count")).to_be_visible()
        self.nav("Inbox")
        expect(self.heading()).to_have_text("Inbox")
        entry = self.page.locator("main li.list-group-item").filter(has_text=text)
        expect(entry).to_have_count(1)
        return entry

    def open_from_inbox(self, text: str) -> None:
        self.inbox_entry(text).get_by_role("button", name="Open case").click()
        expect(self.heading()).to_contain_text("case #")
        self.check()

    # The swimlane ---------------------------------------------------------------------------

    def swimlane(self) -> dict[int, str]:
        return {int(number): status for number, status in self.page.evaluate(SWIMLANE_JS).items()}

    def expect_swimlane(self, *, done, current=None, lane=None, skipped=(), cancelled=()):
        """The swimlane shows exactly these steps done/current/skipped/cancelled; every other
        step upcoming. `lane` is the row the current step sits in."""
        expected = {}
        for number in range(1, 14):
            if number in done:
                expected[number] = "done"
            elif number == current:
                expected[number] = "current"
            elif number in skipped:
                expected[number] = "skipped"
            elif number in cancelled:
                expected[number] = "cancelled"
            else:
                expected[number] = "upcoming"
        assert self.swimlane() == expected
        cell = self.page.locator(".swimlane td.step-current")
        if current is None:
            expect(cell).to_have_count(0)
            return
        expect(cell).to_be_visible()
        expect(cell).to_contain_text("now")
        row = self.page.locator(".swimlane tr", has=self.page.locator("td.step-current"))
        row_head = row.get_by_role("rowheader")
        expect(row_head).to_have_text(lane)
        expect(self.page.get_by_role("heading", level=2, name=f"Step {current} ·")).to_be_visible()
