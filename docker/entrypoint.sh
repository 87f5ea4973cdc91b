#!/bin/sh
# The container's start: bring the index up to date with the knowledge folder, then serve.
#
# A knowledge folder mounted over /app/knowledge is validated and embedded here, without
# rebuilding the image; when nothing changed this is a check of about a second. Invalid
# knowledge stops the container with one line naming the file.
#
# Serves Socket Mode when SLACK_APP_TOKEN is set, else HTTP on $PORT. Arguments run instead of
# the server, after the index build: `docker run IMAGE ban-bot report --since 30`.
set -eu

ban-bot index build

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
if [ -n "${SLACK_APP_TOKEN:-}" ]; then
    exec ban-bot serve
fi
exec ban-bot serve --http --port "${PORT:-3000}"
