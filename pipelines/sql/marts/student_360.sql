-- marts.student_360: one row per student as of the end of the logical date.
-- Enrollment states are reconstructed from their timestamps, so rerunning an
-- old date does not see later completions or cancellations.
WITH enrolled AS (
    SELECT student_id,
           min(enrolled_at) AS first_enrolled_at,
           count(*) FILTER (WHERE (completed_at IS NULL OR completed_at >= TIMESTAMP '{{ data_interval_end }}')
                              AND (cancelled_at IS NULL OR cancelled_at >= TIMESTAMP '{{ data_interval_end }}'))
               AS active_enrollments,
           count(*) FILTER (WHERE completed_at < TIMESTAMP '{{ data_interval_end }}') AS completed_enrollments,
           max(completed_at) FILTER (WHERE completed_at < TIMESTAMP '{{ data_interval_end }}') AS last_completed_at
    FROM staging.enrollments
    WHERE enrolled_at < TIMESTAMP '{{ data_interval_end }}'
    GROUP BY student_id
),
activity AS (
    SELECT student_id,
           max(occurred_at) AS last_activity_at,
           count(*) FILTER (WHERE kind = 'lesson_completed'
                              AND occurred_at >= TIMESTAMP '{{ data_interval_end }}' - INTERVAL '30 days')
               AS lessons_completed_30d
    FROM staging.activity
    WHERE occurred_at < TIMESTAMP '{{ data_interval_end }}'
    GROUP BY student_id
)
SELECT
    arrow_cast(s.id, 'Utf8') AS student_id,
    s.email,
    s.full_name,
    s.country,
    arrow_cast(CASE WHEN s.marketing_opt_in THEN 1 ELSE 0 END, 'UInt8') AS marketing_opt_in,
    e.first_enrolled_at,
    arrow_cast(coalesce(e.active_enrollments, 0), 'UInt32') AS active_enrollments,
    arrow_cast(coalesce(e.completed_enrollments, 0), 'UInt32') AS completed_enrollments,
    a.last_activity_at,
    arrow_cast(coalesce(a.lessons_completed_30d, 0), 'UInt32') AS lessons_completed_30d,
    e.last_completed_at
FROM staging.students AS s
LEFT JOIN enrolled AS e ON e.student_id = s.id
LEFT JOIN activity AS a ON a.student_id = s.id
WHERE s.created_at < TIMESTAMP '{{ data_interval_end }}'
ORDER BY student_id
