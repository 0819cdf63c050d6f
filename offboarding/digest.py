"""The daily digest: everything open on a person's plate, plus what they chose to read daily.

Sent once per person per business day, after the configured local hour. Each digest is a
notification row (kind daily_digest) unique per person and day, so the claim is the insert.
"""

import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from notifications.models import EmailStatus, Notification, NotificationKind
from notifications.services import send

from .calendar import BusinessCalendar
from .selectors import my_work


def digest_day_due(now: dt.datetime, calendar: BusinessCalendar) -> dt.date | None:
    local = now.astimezone(calendar.tz)
    if not calendar.is_business_day(local.date()) or local.hour < settings.DIGEST_HOUR:
        return None
    return local.date()


def send_digest(user, day: dt.date) -> Notification | None:
    """Create `user`'s digest for `day` if there is anything to say and none exists yet."""
    with transaction.atomic():
        waiting = list(
            Notification.objects.select_for_update()
            .filter(recipient=user, email_status=EmailStatus.IN_DIGEST)
            .order_by("created_at")
        )
        open_work = list(my_work(user)[:200])
        if not waiting and not open_work:
            return None
        body = render_to_string(
            "notifications/email/digest_body.txt",
            {"open_work": open_work, "waiting": waiting, "site_url": settings.SITE_URL},
        )
        try:
            with transaction.atomic():
                (digest,) = send(
                    [user],
                    kind=NotificationKind.DAILY_DIGEST,
                    title=f"Your PartnerOps digest for {day:%a %d %b}: "
                    f"{len(open_work)} open step(s)",
                    body=body,
                    digest_day=day,
                )
        except IntegrityError:
            return None  # already sent today: another scheduler got there first
        Notification.objects.filter(pk__in=[n.pk for n in waiting]).update(
            email_status=EmailStatus.DIGESTED, emailed_at=timezone.now()
        )
    return digest


def send_daily_digests(now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    day = digest_day_due(now, BusinessCalendar.from_settings())
    if day is None:
        return 0
    already = Notification.objects.filter(
        kind=NotificationKind.DAILY_DIGEST, digest_day=day
    ).values("recipient")
    users = (
        get_user_model()
        .objects.filter(is_active=True, groups__isnull=False)
        .exclude(pk__in=already)
        .distinct()
    )
    return sum(1 for user in users if send_digest(user, day) is not None)
