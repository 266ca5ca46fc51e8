#!/bin/bash
# Mosquitto with the config the native backend renders (stand-in.conf) and, where the ECS task
# sets EMQX's listener settings (deploy/aws.yaml mqtt-broker), what they ask of EMQX:
# - EMQX_LISTENERS__TCP__INTERNAL__BIND=HOST:PORT: a second listener there, without login;
# - EMQX_LISTENERS__TCP__DEFAULT__ENABLE_AUTHN=true|quick_deny_anonymous: the public listener
#   refuses anonymous clients and admits those of a password file in the data volume, where
#   EMQX keeps its built-in database (add one: `mosquitto_passwd -b FILE USER PASS`, then SIGHUP).
# That config is written to the data volume too: the root filesystem may be read-only.
set -euo pipefail
conf=/etc/mosquitto/stand-in.conf
internal=${EMQX_LISTENERS__TCP__INTERNAL__BIND:-}
authn=${EMQX_LISTENERS__TCP__DEFAULT__ENABLE_AUTHN:-false}
if [ -n "$internal" ] || [ "$authn" != false ]; then
  data=/opt/emqx/data
  {
    echo "per_listener_settings true"
    if [ "$authn" != false ]; then
      touch "$data/passwd"
      sed -e "s|^allow_anonymous true$|allow_anonymous false\npassword_file $data/passwd|" "$conf"
    else
      cat "$conf"
    fi
    if [ -n "$internal" ]; then
      printf 'listener %s %s\nallow_anonymous true\n' "${internal##*:}" "${internal%:*}"
    fi
  } >"$data/stand-in.conf"
  conf=$data/stand-in.conf
fi
exec mosquitto -c "$conf"
