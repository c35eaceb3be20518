-- Cost, tokens and requests per provider and model per month.
-- Dedup: FROM llm_requests FINAL collapses copies of a request_id (ReplacingMergeTree key)
-- at read time, before background merges have run.
SELECT
    toYYYYMM(start_time) AS month,
    provider,
    model,
    count() AS requests,
    sum(total_tokens) AS total_tokens,
    sum(estimated_cost_nano_usd) AS cost_nano_usd
FROM llm_requests FINAL
GROUP BY month, provider, model
ORDER BY month, provider, model
