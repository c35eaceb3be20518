-- Error rate per provider: share of calls whose status is not success, with the counts of
-- each failure status. The rate is rounded to 4 decimals (0.1234 = 12.34%).
-- Dedup: FROM llm_requests FINAL.
SELECT
    provider,
    count() AS requests,
    countIf(status = 'error') AS errors,
    countIf(status = 'timeout') AS timeouts,
    countIf(status = 'cancelled') AS cancelled,
    round(countIf(status != 'success') / count(), 4) AS failure_rate
FROM llm_requests FINAL
GROUP BY provider
ORDER BY provider
