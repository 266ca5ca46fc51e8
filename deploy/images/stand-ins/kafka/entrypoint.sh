#!/bin/bash
# Runs Kafka with compose.yaml's redpanda command as its arguments: it takes the listen and
# advertised addresses from --kafka-addr / --advertise-kafka-addr (the listener name before
# :// dropped); Redpanda's other flags mean nothing to Kafka. The storage is formatted on the
# first start, into the volume; the config is written there too (the root may be read-only).
set -euo pipefail
listen=0.0.0.0:9092
advertise=127.0.0.1:9092
for arg in "$@"; do
  case $arg in
    --kafka-addr=*) listen=${arg#*=} listen=${listen#*://} ;;
    --advertise-kafka-addr=*) advertise=${arg#*=} advertise=${advertise#*://} ;;
  esac
done

data=/var/lib/redpanda/data
config=$data/server.properties
sed -e "s|@LISTEN@|$listen|" -e "s|@ADVERTISE@|$advertise|" -e "s|@LOG_DIRS@|$data/kraft|" \
  /opt/kafka/server.properties.in >"$config"
# A small heap and no perf-data file in /tmp, as the native backend's JVM.
jvm=(java -Xms256m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData
  -Djava.awt.headless=true -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties
  -cp '/opt/kafka/libs/*')

if [ ! -s "$data/kraft/meta.properties" ]; then
  # A cluster id is 16 random bytes in URL-safe base64 without padding (kafka-storage's).
  id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  echo "kafka: first start: format KRaft storage in $data/kraft (cluster $id)"
  "${jvm[@]}" kafka.tools.StorageTool format --cluster-id="$id" --config="$config"
fi
echo "kafka: listening on $listen, advertised as $advertise"
exec "${jvm[@]}" kafka.Kafka "$config"
