-- 0003: daily rollup of requests, tokens and cost per user, model and provider.
-- SummingMergeTree adds up rows with the same key on merge; readers still GROUP BY the key
-- (sum()) because merges are eventual. The view sums each inserted block, so a batch that
-- was inserted twice would count twice here: the shipper's batch_id check prevents that.
-- Not exact in one case: ClickHouse killed in the middle of an INSERT can have written the
-- block to llm_requests but not yet here (views are filled one after the other, not
-- atomically); the batch_id check then rightly does not resend it, and this table is short
-- by that batch (seen in it_outage.sh). Invoices therefore come from llm_requests
-- deduplicated by request_id (queries/cost_per_user_per_day.sql); this table serves
-- dashboards.
CREATE TABLE IF NOT EXISTS llm_usage_daily
(
    day Date,
    user_id String,
    model String,
    provider String,
    requests UInt64,
    errors UInt64,
    prompt_tokens Int64,
    completion_tokens Int64,
    cached_tokens Int64,
    total_tokens Int64,
    cost_nano_usd Int64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (user_id, day, model, provider);

CREATE MATERIALIZED VIEW IF NOT EXISTS llm_usage_daily_mv TO llm_usage_daily AS
SELECT
    toDate(toDateTime(intDiv(start_time_ms, 1000))) AS day,
    user_id, model, provider,
    count() AS requests,
    sum(status != 'success') AS errors,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(total_tokens) AS total_tokens,
    sum(estimated_cost_nano_usd) AS cost_nano_usd
FROM llm_ingest
GROUP BY day, user_id, model, provider;
