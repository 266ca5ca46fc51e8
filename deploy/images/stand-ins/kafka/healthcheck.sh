#!/bin/bash
# Healthy when the broker answers the Kafka protocol: an ApiVersions request (v0, correlation
# id 7, client "hc") on the container's listener gets a reply with that id and error code 0.
set -euo pipefail
exec 3<>/dev/tcp/127.0.0.1/9092
printf '\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x07\x00\x02hc' >&3
reply=$(timeout 3 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')
[ "${reply:8:12}" = 000000070000 ]
