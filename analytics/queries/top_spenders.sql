-- The ten users with the highest cost (ties broken by user_id).
-- Dedup: GROUP BY request_id in the inner query (copies are identical; any() is exact).
SELECT
    user_id,
    count() AS requests,
    sum(cost) AS cost_nano_usd
FROM
(
    SELECT request_id, any(user_id) AS user_id, any(estimated_cost_nano_usd) AS cost
    FROM llm_requests
    GROUP BY request_id
)
GROUP BY user_id
ORDER BY cost_nano_usd DESC, user_id
LIMIT 10
