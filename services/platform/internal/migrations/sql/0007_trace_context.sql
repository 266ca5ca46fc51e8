-- Each event's W3C trace context (its `traceparent` text), written at
-- append and never parsed in SQL: the event relay, in a later transaction,
-- puts it in the Kafka record's headers, and `inv trace EVENT_ID` reads it.
-- NULL: tracing was off, or the event has no trace.
ALTER TABLE events ADD COLUMN IF NOT EXISTS trace_context text;
