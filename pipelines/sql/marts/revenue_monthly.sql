-- marts.revenue_monthly: money per month, course and currency (never summed
-- across currencies). Gross counts payments by paid_at, refunds by
-- refunded_at, so a refund months later lowers that later month's net.
WITH priced AS (
    SELECT p.student_id, p.amount_cents, p.currency, p.status, p.paid_at, p.refunded_at,
           c.code AS course_code
    FROM staging.payments AS p
    JOIN staging.enrollments AS e ON e.id = p.enrollment_id
    JOIN staging.courses AS c ON c.id = e.course_id
),
gross AS (
    SELECT CAST(date_trunc('month', paid_at) AS DATE) AS month, course_code, currency,
           sum(amount_cents) AS cents, count(DISTINCT student_id) AS students
    FROM priced
    WHERE status IN ('succeeded', 'refunded')
      AND paid_at < TIMESTAMP '{{ data_interval_end }}'
    GROUP BY 1, 2, 3
),
refunds AS (
    SELECT CAST(date_trunc('month', refunded_at) AS DATE) AS month, course_code, currency,
           sum(amount_cents) AS cents
    FROM priced
    WHERE refunded_at < TIMESTAMP '{{ data_interval_end }}'
    GROUP BY 1, 2, 3
)
SELECT
    coalesce(g.month, r.month) AS month,
    coalesce(g.course_code, r.course_code) AS course_code,
    coalesce(g.currency, r.currency) AS currency,
    arrow_cast(coalesce(g.cents, 0), 'Int64') AS gross_cents,
    arrow_cast(coalesce(r.cents, 0), 'Int64') AS refunded_cents,
    arrow_cast(coalesce(g.cents, 0) - coalesce(r.cents, 0), 'Int64') AS net_cents,
    arrow_cast(coalesce(g.students, 0), 'UInt64') AS paying_students
FROM gross AS g
FULL OUTER JOIN refunds AS r
    ON g.month = r.month AND g.course_code = r.course_code AND g.currency = r.currency
ORDER BY month, course_code, currency
