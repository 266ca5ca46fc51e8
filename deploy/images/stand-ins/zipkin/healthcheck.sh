#!/bin/bash
# Healthy when Zipkin's /health answers 200 (UP) on the container's port: one HTTP/1.0 GET
# over bash's /dev/tcp (the Debian base has no wget; the official image's check uses it).
set -euo pipefail
exec 3<>/dev/tcp/127.0.0.1/9411
printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
status=$(timeout 3 head -n 1 <&3)
[[ $status == "HTTP/1."?" 200"* ]]
