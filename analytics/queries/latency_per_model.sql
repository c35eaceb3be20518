-- p50 / p95 / p99 of total duration and of time to first token, per model, in ms.
-- quantileExact (not the sampling quantile) so the numbers are reproducible. TTFT ignores
-- calls that produced no token (time_to_first_token_ms = -1).
-- Dedup: FROM llm_requests FINAL.
SELECT
    model,
    count() AS requests,
    quantileExact(0.5)(duration_ms) AS p50_ms,
    quantileExact(0.95)(duration_ms) AS p95_ms,
    quantileExact(0.99)(duration_ms) AS p99_ms,
    quantileExactIf(0.5)(time_to_first_token_ms, time_to_first_token_ms >= 0) AS ttft_p50_ms,
    quantileExactIf(0.95)(time_to_first_token_ms, time_to_first_token_ms >= 0) AS ttft_p95_ms,
    quantileExactIf(0.99)(time_to_first_token_ms, time_to_first_token_ms >= 0) AS ttft_p99_ms
FROM llm_requests FINAL
GROUP BY model
ORDER BY model
