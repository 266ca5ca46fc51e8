-- Actions: commands and their delivery status.
CREATE TABLE IF NOT EXISTS commands (
    command_id      uuid        PRIMARY KEY,
    device_id       text        NOT NULL,
    name            text        NOT NULL,
    args            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status          text        NOT NULL CHECK (status IN ('issued', 'sent', 'acknowledged', 'failed')),
    issued_at       timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    acknowledged_at timestamptz,
    failed_at       timestamptz,
    result          text
);
CREATE INDEX IF NOT EXISTS commands_device ON commands (device_id, issued_at);
