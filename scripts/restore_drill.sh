#!/usr/bin/env bash
# The restore drill (issue 15, item 8), at a small size: a PostgreSQL database with the demo
# seed and an uploaded evidence file, migrated by the owner and used by an app role that owns
# nothing; `manage.py backup`; `manage.py restore` into another database and media directory;
# then proof that every event, payment and evidence file came back: counts and hashes equal,
# `verify_case_records` (chains and evidence bytes) and `check_evidence` pass on the copy.
# A damaged copy of the backup must be refused. Prints its figures; exits non-zero on any
# difference.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
work=$(mktemp -d)
src=${DRILL_DB:-partnerops_drill}
dst=${DRILL_RESTORE_DB:-partnerops_drill_restore}
role=${DRILL_ROLE:-partnerops_drill_app}
pg=postgres://postgres@127.0.0.1:5432
export PGOPTIONS="-c client_min_messages=warning"
cleanup() {
  rm -rf "$work"
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" \
    -c "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql -h 127.0.0.1 -U postgres -q -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" \
  -c "CREATE DATABASE $src" -c "CREATE DATABASE $dst" >/dev/null
export DJANGO_SETTINGS_MODULE=partnerops.settings.dev
export DJANGO_EMAIL_BACKEND=django.core.mail.backends.dummy.EmailBackend DJANGO_LOG_LEVEL=WARNING
export REDIS_URL="${DRILL_REDIS_URL:-redis://127.0.0.1:6379/7}" CELERY_TASK_ALWAYS_EAGER=true
export PARTNEROPS_VAR_DIR="$work/var"
mkdir -p "$work/var"
# Runs a command without django-axes' start-up banner, keeping its exit status.
quiet() {
  local out status=0
  out=$("$@" 2>&1) || status=$?
  [ -z "$out" ] || grep -v '^AXES:' <<<"$out" || true
  return "$status"
}

# The source: the owner migrates, the app role seeds and uploads.
export DATABASE_OWNER_URL="$pg/$src" DATABASE_URL="postgres://$role:drill@127.0.0.1:5432/$src"
export DJANGO_MEDIA_ROOT="$work/media"
quiet $PY manage.py create_app_role
quiet $PY manage.py migrate --database owner --noinput -v0
$PY manage.py seed_demo >/dev/null 2>&1
quiet $PY manage.py shell -v0 -c '
import datetime as dt
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from offboarding import services
from partners.models import Partner
cam = get_user_model().objects.get(username="cam")
partner = Partner.objects.get(display_name="Bluebird Accounting")
services.open_case(
    actor=cam, partner_id=partner.pk,
    data={"initiated_by": "company", "reason": "revenue_minimum", "reason_detail": "",
          "request_received_on": timezone.localdate() - dt.timedelta(days=1),
          "request_channel": "internal_review"},
    evidence=[SimpleUploadedFile("drill-notice.pdf", b"%PDF-1.4 restore drill " * 64,
                                 "application/pdf")],
)
'
quiet $PY manage.py check_evidence
facts() {  # cases, events, payments, evidence rows, event hashes, files' bytes
  psql "$1" -tAc "SELECT (SELECT count(*) FROM offboarding_case) || ' cases, '
    || (SELECT count(*) FROM offboarding_caseevent) || ' events, '
    || (SELECT count(*) FROM payouts_payment) || ' payments, '
    || (SELECT count(*) FROM offboarding_evidencefile) || ' evidence files; events '
    || (SELECT md5(string_agg(id || ':' || hash, ',' ORDER BY id)) FROM offboarding_caseevent)
    || ', payments ' || (SELECT md5(string_agg(id || ':' || amount || ':' || paid_on || ':' || payout_id,
       ',' ORDER BY id)) FROM payouts_payment)"
}
before=$(facts "$pg/$src")
files_before=$(cd "$work/media" && find . -type f -print0 | sort -z | xargs -0 sha256sum)

start=$(date +%s%N)
quiet $PY manage.py backup --output "$work/backup"
echo "backup took $(( ($(date +%s%N) - start) / 1000000 )) ms, $(du -sk "$work/backup" | cut -f1) kB"

# A damaged copy is refused and changes nothing.
cp -r "$work/backup" "$work/damaged"
printf 'x' >>"$(find "$work/damaged/media" -type f | head -n1)"
export DATABASE_OWNER_URL="$pg/$dst" DATABASE_URL="postgres://$role:drill@127.0.0.1:5432/$dst"
export DJANGO_MEDIA_ROOT="$work/restored-media"
if $PY manage.py restore "$work/damaged" >"$work/damaged.log" 2>&1; then
  echo "FAIL: a damaged backup was restored"; cat "$work/damaged.log"; exit 1
fi
grep -q "damaged" "$work/damaged.log" || { echo "FAIL: no damage message"; cat "$work/damaged.log"; exit 1; }
tables=$(psql "$pg/$dst" -tAc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
[ "$tables" = 0 ] || { echo "FAIL: the damaged backup wrote $tables tables"; exit 1; }
echo "damaged backup refused:$(grep -m1 'media/' "$work/damaged.log")"

start=$(date +%s%N)
quiet $PY manage.py restore "$work/backup"
echo "restore took $(( ($(date +%s%N) - start) / 1000000 )) ms"
after=$(facts "$pg/$dst")
files_after=$(cd "$work/restored-media" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
echo "source:   $before"
echo "restored: $after"
echo "evidence files: $(echo "$files_before" | grep -c .) before, $(echo "$files_after" | grep -c .) restored"
[ "$before" = "$after" ] || { echo "FAIL: the restored rows differ"; exit 1; }
[ "$files_before" = "$files_after" ] || { echo "FAIL: the restored evidence files differ"; exit 1; }
[ "$(echo "$files_after" | grep -c .)" -ge 1 ] || { echo "FAIL: no evidence file in the drill"; exit 1; }
# The app role reads the restored copy (grants after restore) and finds every chain intact.
quiet $PY manage.py verify_case_records
quiet $PY manage.py check_evidence
echo "restore drill: ok"
