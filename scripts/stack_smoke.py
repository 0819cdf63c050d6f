"""Smoke journey over real HTTP against a running stack (gunicorn + Celery worker + beat).

Logs in as the demo CAM, completes step 4 of the seeded case "Falcon Tax Services", then
checks that Sales Ops (the next lane) got the email at the SMTP sink and the inbox entry,
and that /healthz answers anonymous callers with its verdict only and reports database,
broker and worker as up to a staff user.

Usage: python scripts/stack_smoke.py BASE_URL MAILDIR
"""

import email.header
import html
import http.cookiejar
import json
import mailbox
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# The demo users' published password (offboarding/demo.py, README "Demo logins").
PASSWORD = "partnerops-demo"  # noqa: S105


class Browser:
    def __init__(self, base):
        self.base = checked_base(base)
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path):
        with self.opener.open(self.base + path, timeout=20) as response:
            return response.status, response.geturl(), response.read().decode()

    def post(self, path, data):
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(  # noqa: S310 - self.base is http(s) (checked_base)
            self.base + path, data=body, headers={"Referer": self.base + path}
        )
        with self.opener.open(request, timeout=20) as response:
            return response.status, response.geturl(), response.read().decode()

    def login(self, username):
        self.get("/login/")
        status, url, page = self.post("/login/", {"username": username, "password": PASSWORD})
        if "/login/" in url:
            raise SystemExit(f"login as {username} failed")


def wait_for(what, check, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def checked_base(base: str) -> str:
    """The stack's address, refused unless it is http(s): urllib would also open file: URLs."""
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise SystemExit(f"not an http(s) address: {base!r}")
    return base.rstrip("/")


def main(base, maildir):
    base = checked_base(base)
    cam = Browser(base)
    cam.login("cam")
    _, _, cases = cam.get("/cases/?state=step_4")
    match = re.search(r'href="/cases/(\d+)/">#\d+</a></td>\s*<td>Falcon Tax Services', cases)
    if not match:
        raise SystemExit("the seeded case of Falcon Tax Services at step 4 is not listed")
    case_id = match.group(1)
    status, url, page = cam.post(
        f"/cases/{case_id}/steps/4/", {"expected_state": "step_4", "confirm": "on"}
    )
    if status != 200 or not url.endswith(f"/cases/{case_id}/") or "Step 4" not in page:
        raise SystemExit(f"completing step 4 failed: {status} {url}")
    if "5 · Update partner record" not in html.unescape(page):
        raise SystemExit("the case did not move to step 5")
    print(f"case {case_id}: step 4 completed over HTTP, now at step 5")

    def subject(message):
        return str(email.header.make_header(email.header.decode_header(message["Subject"])))

    def salesops_mail():
        if not os.path.isdir(os.path.join(maildir, "new")):
            return []
        box = mailbox.Maildir(maildir, create=False)
        return [
            m
            for m in box
            if m["To"] == "salesops@example.com"
            and "Step 5" in subject(m)
            and "Falcon Tax Services" in subject(m)
        ]

    mails = wait_for("the Sales Ops email at the SMTP sink", salesops_mail)
    if len(mails) != 1:
        raise SystemExit(f"expected one Sales Ops email, got {len(mails)}")
    print(f"email delivered to salesops: {subject(mails[0])}")

    salesops = Browser(base)
    salesops.login("salesops")
    _, _, inbox = salesops.get("/inbox/")
    if "Step 5" not in inbox or "Falcon Tax Services" not in html.unescape(inbox):
        raise SystemExit("the inbox entry for Sales Ops is missing")
    print("inbox entry present for salesops")

    def healthy():
        try:
            # base is http(s) (checked_base).
            with urllib.request.urlopen(base + "/healthz", timeout=10) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError:
            return None

    health = wait_for("/healthz to report ok", healthy)
    if health != {"status": "ok"}:
        raise SystemExit(f"anonymous /healthz says more than its verdict: {health}")
    # The detail of each check is for staff: the demo's superuser reads it.
    staff = Browser(base)
    staff.login("admin")
    _, _, detail = staff.get("/healthz")
    detail = json.loads(detail)
    if not all(detail[check]["ok"] for check in ("database", "broker", "worker")):
        raise SystemExit(f"/healthz detail for staff is not all ok: {detail}")
    print(f"healthz: {health['status']} (worker heartbeat {detail['worker']['age_seconds']}s old)")
    print("stack smoke: passed")


if __name__ == "__main__":
    main(*sys.argv[1:3])
