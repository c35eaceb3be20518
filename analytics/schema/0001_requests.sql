-- 0001: billing records. Runs on ClickHouse 18.16 and current releases (common subset: no
-- DateTime64, no TTL, no LowCardinality, no async_insert; plain String and integer columns).
--
-- The shipper inserts into llm_ingest (ENGINE = Null: stores nothing); materialized views
-- copy each inserted block into the tables below, so one INSERT per batch fills the record
-- table, the bodies table and the daily rollup, and the row format stays a plain flat JSON
-- object whose times are exact integers (unix ms) with no timezone parsing.

CREATE TABLE IF NOT EXISTS llm_ingest
(
    request_id String,
    stream_id String,
    user_id String,
    conversation_id String,
    agent_id String,
    provider_config_id String,
    provider String,
    model String,
    has_temperature UInt8,
    temperature Float64,
    has_max_tokens UInt8,
    max_tokens Int64,
    stream UInt8,
    request_messages String,
    request_params String,
    response_content String,
    finish_reason String,
    prompt_tokens Int64,
    completion_tokens Int64,
    cached_tokens Int64,
    total_tokens Int64,
    estimated_cost_nano_usd Int64,
    usage_source String,
    price_missing UInt8,
    start_time_ms Int64,
    end_time_ms Int64,
    duration_ms Int64,
    time_to_first_token_ms Int64,
    status String,
    error_message String,
    metadata String,
    batch_id String
)
ENGINE = Null;

-- One row per upstream call. ReplacingMergeTree: rows with the same sorting key collapse on
-- merge; request_id is the last key column and every earlier key column is a function of
-- the same record, so two copies of one request_id always share the whole key and collapse.
-- Queries that must be exact before a merge use FINAL or GROUP BY request_id.
-- Monthly partitions (retention drops whole months); ordered for per-user queries first
-- (usage, logs, invoices), then day and model.
CREATE TABLE IF NOT EXISTS llm_requests
(
    request_id String,
    stream_id String,
    user_id String,
    conversation_id String,
    agent_id String,
    provider_config_id String,
    provider String,
    model String,
    has_temperature UInt8,
    temperature Float64,
    has_max_tokens UInt8,
    max_tokens Int64,
    stream UInt8,
    finish_reason String,
    prompt_tokens Int64,
    completion_tokens Int64,
    cached_tokens Int64,
    total_tokens Int64,
    estimated_cost_nano_usd Int64,
    usage_source String,
    price_missing UInt8,
    start_time DateTime,
    start_time_ms Int64,
    end_time_ms Int64,
    duration_ms Int64,
    time_to_first_token_ms Int64,
    status String,
    error_message String,
    metadata String,
    batch_id String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(start_time)
ORDER BY (user_id, toDate(start_time), model, request_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_requests_mv TO llm_requests AS
SELECT
    request_id, stream_id, user_id, conversation_id, agent_id, provider_config_id, provider,
    model, has_temperature, temperature, has_max_tokens, max_tokens, stream, finish_reason,
    prompt_tokens, completion_tokens, cached_tokens, total_tokens, estimated_cost_nano_usd,
    usage_source, price_missing,
    toDateTime(intDiv(start_time_ms, 1000)) AS start_time,
    start_time_ms, end_time_ms, duration_ms, time_to_first_token_ms, status, error_message,
    metadata, batch_id
FROM llm_ingest;
