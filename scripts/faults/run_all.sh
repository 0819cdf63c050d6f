#!/usr/bin/env bash
# The fault suite (issue 15, item 9): each fault starts its own stack — PostgreSQL database,
# redis-server, gunicorn, Celery worker/beat, SMTP sink, on its own ports — injects its fault
# and prints one line of figures; a fault whose target fails exits non-zero.
#   bash scripts/faults/run_all.sh [--small] [--http-port N --smtp-port N --redis-port N] [fault ...]
# (--small: the CI size; the ports default to 8300, 8400 and 6393)
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
size=()
faults=()
while [ $# -gt 0 ]; do
  case "$1" in
    --small) size+=(--small) ;;
    --http-port|--smtp-port|--redis-port) size+=("$1" "$2"); shift ;;
    *) faults+=("$1") ;;
  esac
  shift
done
[ ${#faults[@]} -gt 0 ] || faults=(concurrent_submissions broker_outage worker_kill two_schedulers authz_matrix form_fuzz)

# Migrated and seeded once; every fault copies it (CREATE DATABASE ... TEMPLATE).
export FAULTS_TEMPLATE_DB=partnerops_he_template
export FAULTS_STATIC_ROOT
FAULTS_STATIC_ROOT=$(mktemp -d /tmp/faults-static-XXXXXX)
cleanup() {
  $PY scripts/faults/stack.py drop "$FAULTS_TEMPLATE_DB" "$FAULTS_STATIC_ROOT" || true
  rm -rf "$FAULTS_STATIC_ROOT"
}
trap cleanup EXIT
$PY scripts/faults/stack.py create "$FAULTS_TEMPLATE_DB" "$FAULTS_STATIC_ROOT" || exit 1

failed=()
lines=()
for fault in "${faults[@]}"; do
  start=$(date +%s)
  # Bounded: no fault runs longer than 15 minutes, whatever it waits for.
  out=$(timeout 900 $PY "scripts/faults/$fault.py" "${size[@]}" 2> >(cat >&2))
  status=$?
  echo "$out" | grep -v '^fault ' || true
  line=$(echo "$out" | grep '^fault ' | tail -n 1)
  lines+=("${line:-fault $fault: no figures (exit $status)} ($(( $(date +%s) - start ))s)")
  [ "$status" -eq 0 ] || failed+=("$fault")
done

echo
echo "Fault suite figures:"
printf '  %s\n' "${lines[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "Fault suite: targets failed in ${failed[*]}"
  exit 1
fi
echo "Fault suite: every target held"
