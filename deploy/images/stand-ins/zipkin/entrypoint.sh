#!/bin/sh
# The official image's start: the JVM with JAVA_OPTS (compose.yaml's), the exec jar, the
# server's own environment (STORAGE_TYPE, MEM_MAX_SPANS, QUERY_PORT default 9411).
# shellcheck disable=SC2086 # JAVA_OPTS is a list of options
exec java ${JAVA_OPTS:-} -jar /zipkin/zipkin.jar "$@"
