#!/bin/sh
# Healthy when the broker accepts an MQTT connection and serves a subscription: its retained
# $SYS/broker/version arrives within 3 s. Asked on the listener without login: the internal
# one where the ECS task sets it (entrypoint.sh), else 1883.
bind=${EMQX_LISTENERS__TCP__INTERNAL__BIND:-127.0.0.1:1883}
exec mosquitto_sub -h "${bind%:*}" -p "${bind##*:}" -t '$SYS/broker/version' -C 1 -W 3
