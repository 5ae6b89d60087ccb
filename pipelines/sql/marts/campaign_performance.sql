-- marts.campaign_performance: leads, conversions and the net revenue of the
-- students those leads became, per campaign and currency, as of the end of
-- the logical date. A campaign whose converted students paid nothing still
-- has one row, in the campaign's currency, with 0.
WITH leads AS (
    SELECT campaign_id, status, converted_at, student_id
    FROM staging.leads
    WHERE campaign_id IS NOT NULL
      AND created_at < TIMESTAMP '{{ data_interval_end }}'
),
converted AS (
    SELECT campaign_id, student_id
    FROM leads
    WHERE status = 'converted' AND converted_at < TIMESTAMP '{{ data_interval_end }}'
),
counts AS (
    SELECT l.campaign_id, count(*) AS leads,
           count(*) FILTER (WHERE l.status = 'converted'
                            AND l.converted_at < TIMESTAMP '{{ data_interval_end }}') AS converted_leads
    FROM leads AS l
    GROUP BY l.campaign_id
),
revenue AS (
    SELECT v.campaign_id, p.currency,
           sum(CASE WHEN p.status IN ('succeeded', 'refunded') THEN p.amount_cents ELSE 0 END)
         - sum(CASE WHEN p.refunded_at < TIMESTAMP '{{ data_interval_end }}' THEN p.amount_cents ELSE 0 END)
           AS net_cents
    FROM converted AS v
    JOIN staging.payments AS p ON p.student_id = v.student_id
    WHERE p.paid_at < TIMESTAMP '{{ data_interval_end }}'
    GROUP BY v.campaign_id, p.currency
)
SELECT
    cp.name AS campaign_name,
    cp.channel AS channel,
    coalesce(r.currency, cp.currency) AS currency,
    arrow_cast(coalesce(n.leads, 0), 'UInt64') AS leads,
    arrow_cast(coalesce(n.converted_leads, 0), 'UInt64') AS converted_leads,
    arrow_cast(coalesce(r.net_cents, 0), 'Int64') AS net_revenue_cents
FROM staging.campaigns AS cp
LEFT JOIN counts AS n ON n.campaign_id = cp.id
LEFT JOIN revenue AS r ON r.campaign_id = cp.id
WHERE cp.created_at < TIMESTAMP '{{ data_interval_end }}'
ORDER BY campaign_name, currency
