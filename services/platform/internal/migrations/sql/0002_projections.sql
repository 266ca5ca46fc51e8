-- Query-side projections built from telemetry.v1.

CREATE TABLE IF NOT EXISTS device_latest (
    device_id  text        PRIMARY KEY,
    last_ts    timestamptz NOT NULL,
    version    bigint      NOT NULL,
    metrics    jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- readings: one row per (reading, metric). A TimescaleDB hypertable when the
-- extension can be loaded, plain monthly range partitions otherwise.
DO $$
DECLARE
    has_tsdb boolean;
    m date;
BEGIN
    IF to_regclass('readings') IS NOT NULL THEN
        RETURN;
    END IF;
    has_tsdb := EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
        AND current_setting('shared_preload_libraries', true) LIKE '%timescaledb%';
    IF has_tsdb THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        CREATE TABLE readings (
            device_id text             NOT NULL,
            ts        timestamptz      NOT NULL,
            metric    text             NOT NULL,
            value     double precision NOT NULL,
            event_id  uuid             NOT NULL,
            UNIQUE (device_id, ts, event_id, metric)
        );
        PERFORM create_hypertable('readings', 'ts');
    ELSE
        CREATE TABLE readings (
            device_id text             NOT NULL,
            ts        timestamptz      NOT NULL,
            metric    text             NOT NULL,
            value     double precision NOT NULL,
            event_id  uuid             NOT NULL,
            UNIQUE (device_id, ts, event_id, metric)
        ) PARTITION BY RANGE (ts);
        CREATE TABLE readings_default PARTITION OF readings DEFAULT;
        m := date '2025-01-01';
        WHILE m < date '2029-01-01' LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                'readings_' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
            m := (m + interval '1 month')::date;
        END LOOP;
    END IF;
END
$$;
