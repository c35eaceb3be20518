-- 0002: request and response bodies, kept apart from the billing rows: they are large,
-- privacy-sensitive (may be truncated or absent by setting) and rarely read; usage and cost
-- queries never touch them. Deduplicated like llm_requests.
CREATE TABLE IF NOT EXISTS llm_request_bodies
(
    request_id String,
    user_id String,
    start_time DateTime,
    request_messages String,
    request_params String,
    response_content String,
    batch_id String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(start_time)
ORDER BY (user_id, toDate(start_time), request_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_request_bodies_mv TO llm_request_bodies AS
SELECT
    request_id, user_id,
    toDateTime(intDiv(start_time_ms, 1000)) AS start_time,
    request_messages, request_params, response_content, batch_id
FROM llm_ingest;
