# syntax=docker/dockerfile:1
# The Go monolith for the ECS task (ADR-0007). Context: the repository root, because
# services/platform/go.mod replaces platform/schemas with ../../schemas.
# Built with the Go version of go.mod and the -X stamps `inv build` uses (`inv aws.push`
# passes them); no HEALTHCHECK: ECS probes the container from the task definition.
# The bases are build arguments, so a machine that reaches no registry builds it on its own
# (INFRA_IMAGES=local: devenv/backends/stand_ins.py `build_bases`); the defaults are the ones used.
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=alpine:3.21.3

FROM ${GO_IMAGE} AS build
WORKDIR /src/services/platform
# Dependencies first, so a source change reuses the module download layer.
COPY schemas/ /src/schemas/
COPY services/platform/go.mod services/platform/go.sum ./
RUN go mod download
COPY services/platform/ ./
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_TIME=unknown
# Static, so the runtime stage needs no libc of the build image.
RUN CGO_ENABLED=0 go build -o /out/platform \
    -ldflags "-X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildTime=${BUILD_TIME}" \
    ./cmd/platform

# Alpine rather than distroless: the task definition's health check needs busybox wget.
FROM ${RUNTIME_IMAGE}
# The user written into passwd/group directly: the same line on Alpine and on a Debian base.
RUN echo 'platform:x:65532:65532:platform:/nonexistent:/sbin/nologin' >>/etc/passwd \
    && echo 'platform:x:65532:' >>/etc/group
COPY --from=build /out/platform /usr/local/bin/platform
USER 65532:65532
EXPOSE 8080 8081 8082
ENTRYPOINT ["platform"]
CMD ["serve"]
