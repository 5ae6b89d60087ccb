-- staging.courses: the latest version of each CRM row by id (rows are updated in
-- place upstream and extracted incrementally, so raw keeps every version seen).
SELECT id, code, title, category, price_cents, currency, starts_on, created_at, updated_at
FROM (
    SELECT *, row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) AS version_rank
    FROM raw.crm_courses
) AS versions
WHERE version_rank = 1
