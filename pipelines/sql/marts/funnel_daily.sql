-- marts.funnel_daily: leads by source, created and converted per day, for
-- every day up to the end of the logical date.
WITH created AS (
    SELECT CAST(created_at AS DATE) AS day, source, count(*) AS n
    FROM staging.leads
    WHERE created_at < TIMESTAMP '{{ data_interval_end }}'
    GROUP BY 1, 2
),
converted AS (
    SELECT CAST(converted_at AS DATE) AS day, source, count(*) AS n
    FROM staging.leads
    WHERE converted_at IS NOT NULL AND converted_at < TIMESTAMP '{{ data_interval_end }}'
    GROUP BY 1, 2
)
SELECT
    coalesce(c.day, v.day) AS day,
    coalesce(c.source, v.source) AS source,
    arrow_cast(coalesce(c.n, 0), 'UInt64') AS leads_created,
    arrow_cast(coalesce(v.n, 0), 'UInt64') AS leads_converted
FROM created AS c
FULL OUTER JOIN converted AS v ON c.day = v.day AND c.source = v.source
ORDER BY day, source
