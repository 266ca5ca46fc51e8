-- Event store v2: the events table is the Kafka outbox.
--
-- An event with a topic is published by the relay of its sink, which
-- follows a cursor (tx, seq) instead of deleting rows: tx is the writing
-- transaction's id, seq the row's place. The relay reads only rows of
-- transactions older than every running one (tx < pg_snapshot_xmin), so a
-- slow transaction holding a lower seq is never skipped. Writers lock their
-- device streams before their first write (eventstore.Store.Write), so for
-- one device tx order is commit order.
--
-- payload becomes bytea: nothing in SQL reads into it (the query side reads
-- projections), and bytea is the cheapest to COPY. To look at it:
-- convert_from(payload, 'UTF8')::json.
ALTER TABLE events
    ALTER COLUMN payload TYPE bytea USING convert_to(payload::text, 'UTF8'),
    ADD COLUMN topic text,
    ADD COLUMN tx    xid8   NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN seq   bigint NOT NULL GENERATED ALWAYS AS IDENTITY (CACHE 1000);

CREATE INDEX events_publish_order ON events (tx, seq) WHERE topic IS NOT NULL;

-- A stream's last version is read from the (stream_id, version) index under
-- the stream's lock: the version counter table and its writes go.
DROP TABLE streams;

-- One row per relay sink: the position of the last published event.
CREATE TABLE relay_cursors (
    sink       text        PRIMARY KEY,
    tx         xid8        NOT NULL DEFAULT '0',
    seq        bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Events a broker refused for good (too large, not authorised): the relay
-- records them here with the broker's error and moves its cursor past them,
-- so they never hold back the events behind them.
CREATE TABLE relay_dead_letters (
    sink      text        NOT NULL,
    event_id  uuid        NOT NULL,
    topic     text        NOT NULL,
    error     text        NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sink, event_id)
);

-- Events already published keep topic NULL and are never sent again. Those
-- whose Kafka row was still waiting in the outbox get its topic: they all
-- carry this migration's tx, above the new cursor, and are published once.
-- Their payloads already hold exactly the Kafka value's own fields.
UPDATE events e
SET topic = o.topic
FROM outbox o
WHERE o.sink = 'kafka'
  AND e.event_id = (convert_from(o.payload, 'UTF8')::jsonb ->> 'event_id')::uuid;
DELETE FROM outbox WHERE sink = 'kafka';
