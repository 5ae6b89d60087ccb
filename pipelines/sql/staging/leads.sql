-- staging.leads: the latest version of each CRM row by id (rows are updated in
-- place upstream and extracted incrementally, so raw keeps every version seen).
SELECT id, email, full_name, phone, country, source, campaign_id, course_interest_id, status, marketing_opt_in, converted_at, student_id, created_at, updated_at
FROM (
    SELECT *, row_number() OVER (PARTITION BY id ORDER BY updated_at DESC) AS version_rank
    FROM raw.crm_leads
) AS versions
WHERE version_rank = 1
