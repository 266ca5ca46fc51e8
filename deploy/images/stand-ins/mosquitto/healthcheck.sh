#!/bin/sh
# Healthy when the broker accepts an MQTT connection and serves a subscription: its retained
# $SYS/broker/version arrives within 3 s.
exec mosquitto_sub -h 127.0.0.1 -p 1883 -t '$SYS/broker/version' -C 1 -W 3
