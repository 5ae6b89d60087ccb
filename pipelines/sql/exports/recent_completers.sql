-- Segment recent_completers: opted-in students who completed a course in the
-- 30 days ending with the logical date.
SELECT email, full_name, country
FROM marts.student_360
WHERE marketing_opt_in = 1
  AND last_completed_at >= TIMESTAMP '{{ data_interval_end }}' - INTERVAL '30 days'
ORDER BY email
