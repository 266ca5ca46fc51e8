-- Anomalies detected by the anomaly detector (hosted by the query server):
-- one row per AnomalyDetected event, written in the transaction that appends
-- the event and its outbox row. Read by GET /query/v1/devices/{id}/anomalies.
CREATE TABLE IF NOT EXISTS anomalies (
    event_id         uuid             PRIMARY KEY,
    device_id        text             NOT NULL,
    metric           text             NOT NULL,
    ts               timestamptz      NOT NULL,
    value            double precision NOT NULL,
    score            double precision NOT NULL,
    reading_event_id uuid             NOT NULL,
    model_name       text             NOT NULL,
    model_version    text             NOT NULL,
    detected_at      timestamptz      NOT NULL
);
CREATE INDEX IF NOT EXISTS anomalies_device ON anomalies (device_id, ts, event_id);
