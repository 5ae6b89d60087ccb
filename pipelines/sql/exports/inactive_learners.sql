-- Segment inactive_learners: opted-in students with an active enrollment and
-- no learning activity in the 14 days ending with the logical date.
SELECT email, full_name, country
FROM marts.student_360
WHERE marketing_opt_in = 1
  AND active_enrollments > 0
  AND (last_activity_at IS NULL
       OR last_activity_at < TIMESTAMP '{{ data_interval_end }}' - INTERVAL '14 days')
ORDER BY email
