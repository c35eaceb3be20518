-- Cost, tokens and requests per user per day (UTC), for invoices.
-- Dedup: GROUP BY request_id in the inner query: copies of a record (a retried batch that
-- landed twice, not yet merged away by ReplacingMergeTree) are identical, so any() picks
-- the one value and each request counts once. Cost is exact integer nano-USD.
SELECT
    user_id,
    day,
    count() AS requests,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(total_tokens) AS total_tokens,
    sum(cost) AS cost_nano_usd
FROM
(
    SELECT
        request_id,
        any(user_id) AS user_id,
        toDate(any(start_time)) AS day,
        any(prompt_tokens) AS prompt_tokens,
        any(completion_tokens) AS completion_tokens,
        any(total_tokens) AS total_tokens,
        any(estimated_cost_nano_usd) AS cost
    FROM llm_requests
    GROUP BY request_id
)
GROUP BY user_id, day
ORDER BY user_id, day
