#!/usr/bin/env bash
# Starts the production topology without Docker — gunicorn, a Celery worker and Celery
# beat against PostgreSQL and Redis, and a local SMTP sink — runs the smoke journey over
# real HTTP, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
work=$(mktemp -d)
db=${STACK_DB:-partnerops_stack}
port=${STACK_PORT:-8123}
smtp_port=${STACK_SMTP_PORT:-8026}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
export DJANGO_SETTINGS_MODULE=partnerops.settings.prod
# The app runs as a role that owns nothing; the owner (postgres) creates it and migrates.
export DATABASE_URL="postgres://${db}_app:stack-smoke@127.0.0.1:5432/$db"
export DATABASE_OWNER_URL="postgres://postgres@127.0.0.1:5432/$db"
export REDIS_URL="${STACK_REDIS_URL:-redis://127.0.0.1:6379/7}"
export DJANGO_SECRET_KEY="stack-smoke-$(date +%s)-not-a-real-secret-but-long-enough-for-django"
export DJANGO_ALLOWED_HOSTS=127.0.0.1
export DJANGO_SECURE_SSL_REDIRECT=false DJANGO_SESSION_COOKIE_SECURE=false DJANGO_CSRF_COOKIE_SECURE=false
export DJANGO_EMAIL_HOST=127.0.0.1 DJANGO_EMAIL_PORT=$smtp_port
export DJANGO_STATIC_ROOT="$work/static" PARTNEROPS_VAR_DIR="$work/var"
export PARTNEROPS_SITE_URL="http://127.0.0.1:$port"
export PARTNEROPS_HEARTBEAT_EVERY_SECONDS=2 PARTNEROPS_SWEEP_EVERY_SECONDS=5
redis-cli -u "$REDIS_URL" flushdb >/dev/null
mkdir -p "$work/var"

$PY manage.py create_app_role >/dev/null
$PY manage.py migrate --database owner --noinput -v0
# Only the migration step knows the owner; seed, gunicorn, worker and beat are the app role.
unset DATABASE_OWNER_URL
$PY manage.py seed_demo >/dev/null
$PY manage.py collectstatic --noinput -v0

$PY -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$work/mail" \
  >"$work/smtp.log" 2>&1 & pids+=($!)
.venv/bin/gunicorn partnerops.wsgi:application --bind "127.0.0.1:$port" --workers 2 \
  >"$work/gunicorn.log" 2>&1 & pids+=($!)
.venv/bin/celery -A partnerops worker --concurrency=2 --loglevel=warning \
  >"$work/worker.log" 2>&1 & pids+=($!)
.venv/bin/celery -A partnerops beat --loglevel=warning --schedule "$work/var/beat-schedule" \
  >"$work/beat.log" 2>&1 & pids+=($!)

for _ in $(seq 60); do
  curl -fs -o /dev/null "http://127.0.0.1:$port/login/" && break
  sleep 0.5
done
if ! $PY scripts/stack_smoke.py "http://127.0.0.1:$port" "$work/mail"; then
  for log in gunicorn worker beat smtp; do echo "--- $log.log"; tail -n 40 "$work/$log.log"; done
  exit 1
fi
# Who the running processes are connected as (they keep their connections: CONN_MAX_AGE).
read -r as_app as_other < <(psql -h 127.0.0.1 -U postgres -tA -F' ' -c "SELECT
  count(*) FILTER (WHERE usename = '${db}_app'), count(*) FILTER (WHERE usename <> '${db}_app')
  FROM pg_stat_activity WHERE datname = '$db' AND pid <> pg_backend_pid()")
echo "database connections of the stack: $as_app as ${db}_app (owns nothing), $as_other as another role"
if [ "$as_app" -lt 1 ] || [ "$as_other" -ne 0 ]; then
  echo "FAIL: the app must connect as ${db}_app only"; exit 1
fi
