#!/usr/bin/env bash
# Keep one command running: start it again whenever it exits, waiting 1 s, then 2, 4, … up
# to SUPERVISE_MAX_DELAY (30 s), back to 1 s once a run has lasted SUPERVISE_HEALTHY_SECONDS
# (60 s). SIGTERM or SIGINT stops the command (SIGTERM: Celery's warm shutdown) and then this.
#
#   scripts/supervise.sh NAME COMMAND [ARG...]
#
# `make run` runs the Celery worker (with its embedded beat) under it: the worker can exit
# when Redis drops (kombu's Redis transport, restoring unacknowledged messages), and nothing
# would start it again. The compose stack uses Docker's restart policies instead.
set -u

if (($# < 2)); then
    echo "usage: $0 NAME COMMAND [ARG...]" >&2
    exit 2
fi
name=$1
shift

first_delay=${SUPERVISE_FIRST_DELAY:-1}
max_delay=${SUPERVISE_MAX_DELAY:-30}
healthy_seconds=${SUPERVISE_HEALTHY_SECONDS:-60}
for value in "$first_delay" "$max_delay" "$healthy_seconds"; do
    if ! [[ $value =~ ^[0-9]+$ ]] || ((value < 1)); then
        echo "supervise: SUPERVISE_FIRST_DELAY, _MAX_DELAY and _HEALTHY_SECONDS must be whole seconds, 1 or more (got '$value')" >&2
        exit 2
    fi
done

child=
stopping=

stop() {
    stopping=1
    if [[ -n $child ]]; then
        kill -TERM "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    echo "supervise: $name stopped" >&2
    exit 0
}
trap stop INT TERM

delay=$first_delay
while :; do
    started=$SECONDS
    "$@" &
    child=$!
    # `wait` returns early when a trapped signal arrives; the trap then stops the child.
    wait "$child"
    status=$?
    child=
    [[ -n $stopping ]] && exit 0
    ran=$((SECONDS - started))
    if ((ran >= healthy_seconds)); then
        delay=$first_delay
    fi
    echo "supervise: $name exited with status $status after ${ran}s; starting it again in ${delay}s" >&2
    sleep "$delay" &
    wait $! # in the background, so a signal interrupts the pause
    delay=$((delay * 2 > max_delay ? max_delay : delay * 2))
done
