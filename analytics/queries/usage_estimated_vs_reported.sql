-- How much usage was reported by the upstream versus estimated locally (no usage block, or
-- a cancelled stream), per model; also how many calls had no price (cost 0, to review).
-- Dedup: FROM llm_requests FINAL.
SELECT
    model,
    usage_source,
    count() AS requests,
    sum(total_tokens) AS total_tokens,
    sum(estimated_cost_nano_usd) AS cost_nano_usd,
    countIf(price_missing = 1) AS price_missing
FROM llm_requests FINAL
GROUP BY model, usage_source
ORDER BY model, usage_source
