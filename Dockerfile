# ban-bot with its embedding model and a built index baked in. Docs: docs/OPERATIONS.md.
#
#   docker build -t ban-bot .
#   docker run -p 3000:3000 -e SLACK_BOT_TOKEN -e SLACK_SIGNING_SECRET ban-bot    # HTTP on $PORT
#   docker run -e SLACK_BOT_TOKEN -e SLACK_APP_TOKEN ban-bot                      # Socket Mode
#
# Dependencies and the index come from the Makefile's own `make install` and `make index`, so the
# image and a developer's machine cannot drift apart (tests/test_dockerfile.py checks it).

FROM python:3.11-slim-bookworm AS build

# PyPI's torch for Linux brings CUDA (gigabytes); this index has the CPU-only build of the same
# version, which pip prefers (2.13.0+cpu sorts above 2.13.0).
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# make runs the recipes; the version pin is bookworm's (hadolint DL3008).
RUN apt-get update \
    && apt-get install -y --no-install-recommends make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# What `make install` needs: a change to the knowledge alone does not reinstall anything.
COPY Makefile pyproject.toml README.md ./
COPY bot/ bot/
# EXTRAS= : no test or lint tools in the image. The install is editable, as for developers, so
# the app finds knowledge/ and index/ beside bot/ in /app.
RUN make install VENV=/opt/venv EXTRAS=

COPY knowledge/ knowledge/
COPY index/README.md index/
# Validates the knowledge (an invalid file fails the build, naming it), embeds it with the bundled
# model and exports the torch-free query encoder.
RUN make index VENV=/opt/venv EXTRAS=


FROM python:3.11-slim-bookworm AS runtime

# Offline: the model is in the image and nothing is fetched at run time. (ban-bot sets
# TOKENIZERS_PARALLELISM itself.)
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HOST=0.0.0.0 \
    PORT=3000

# A fixed numeric id, so an orchestrator can check runAsNonRoot and volumes can be given to it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-log-init --create-home --home-dir /home/app app \
    && install -d -o 10001 -g 10001 /app /app/data

# The virtualenv stays root's (read-only to the app); the index and data are the app's, so a
# mounted knowledge folder can be rebuilt into index/ at start.
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /app /app
COPY --chown=10001:10001 docker/entrypoint.sh /app/docker/entrypoint.sh

WORKDIR /app
USER 10001:10001
EXPOSE 3000

# /healthz answers 200 once the index is loaded (503 while it loads). Socket Mode serves no HTTP,
# so there the check passes and the process itself is the signal.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0) if os.environ.get('SLACK_APP_TOKEN') else urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
