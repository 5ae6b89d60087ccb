-- staging.payments: the latest version of each CRM row by id (rows are updated in
-- place upstream and extracted incrementally, so raw keeps every version seen).
SELECT id, enrollment_id, student_id, amount_cents, currency, provider, status, paid_at, refunded_at, idempotency_key, created_at, updated_at
FROM (
    SELECT *, row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) AS version_rank
    FROM raw.crm_payments
) AS versions
WHERE version_rank = 1
