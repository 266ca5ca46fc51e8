# syntax=docker/dockerfile:1
# The AI inference service for the ECS task (ADR-0007). Context: the repository root.
# Dependencies come from services/ai-inference/pyproject.toml, the declaration `inv build`
# installs from; no HEALTHCHECK: ECS probes the container from the task definition.
# The base is a build argument (INFRA_IMAGES=local: devenv/backends/stand_ins.py `build_bases`).
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE}
# No .pyc writes: the task runs this container with a read-only root filesystem.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The checkout's layout: the service reads schemas/ (the settings' defaults, the bodies'
# patterns) two folders above its package, so the package is installed in place (editable)
# rather than copied into site-packages.
WORKDIR /srv/services/ai-inference
COPY schemas/ /srv/schemas/
COPY services/ai-inference/pyproject.toml ./
COPY services/ai-inference/ai_inference/ ./ai_inference/
RUN pip install --editable . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ai
USER 10001:10001
EXPOSE 8090
CMD ["python", "-m", "ai_inference"]
