-- Readings the anomaly detector judged "not scored": their value is outside
-- what the scorer accepts (score-request.schema.json) or the scorer refused
-- their window. Recorded once, with the reason, instead of retried forever;
-- listed as skipped by GET /query/v1/devices/{id}/anomalies.
CREATE TABLE IF NOT EXISTS unscored_readings (
    reading_event_id uuid             NOT NULL,
    metric           text             NOT NULL,
    device_id        text             NOT NULL,
    ts               timestamptz      NOT NULL,
    value            double precision NOT NULL,
    reason           text             NOT NULL,
    recorded_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (reading_event_id, metric)
);
CREATE INDEX IF NOT EXISTS unscored_readings_device ON unscored_readings (device_id, ts);

-- processed_messages keeps one row per message only as long as the message
-- can come again (the topic's retention); the app deletes older rows.
CREATE INDEX IF NOT EXISTS processed_messages_age ON processed_messages (processed_at);
