-- Event store, outbox and consumer bookkeeping.

-- One row per device stream: the last version handed out. Writers lock the
-- row (INSERT .. ON CONFLICT DO UPDATE) so appends to one stream serialize.
CREATE TABLE IF NOT EXISTS streams (
    stream_id  text        PRIMARY KEY,
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Append-only: never updated, never deleted.
CREATE TABLE IF NOT EXISTS events (
    event_id    uuid        PRIMARY KEY,
    stream_id   text        NOT NULL,
    version     bigint      NOT NULL CHECK (version >= 1),
    type        text        NOT NULL,
    payload     jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version)
);

-- Rows leave only after the broker acknowledged them. sink = kafka | mqtt.
CREATE TABLE IF NOT EXISTS outbox (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sink       text        NOT NULL CHECK (sink IN ('kafka', 'mqtt')),
    topic      text        NOT NULL,
    key        text        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The kafka relay walks the primary key (nearly every row is kafka); the
-- rare mqtt rows get a small partial index so the command relay never scans
-- a telemetry backlog.
CREATE INDEX IF NOT EXISTS outbox_mqtt_id ON outbox (id) WHERE sink = 'mqtt';

-- Idempotent consumers: a message id is applied once per consumer.
CREATE TABLE IF NOT EXISTS processed_messages (
    consumer     text        NOT NULL,
    message_id   text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
