-- marts.course_engagement_daily: deduplicated learning events per day and
-- course. Incremental: a run recomputes the days from
-- {{ lookback_start }} up to the end of the logical date (events arrive up to
-- 48 h late); a course with no events on a day has no row.
SELECT
    CAST(a.occurred_at AS DATE) AS day,
    c.code AS course_code,
    arrow_cast(count(DISTINCT a.student_id), 'UInt64') AS active_students,
    arrow_cast(count(*) FILTER (WHERE a.kind = 'lesson_completed'), 'UInt64') AS lessons_completed,
    arrow_cast(count(*) FILTER (WHERE a.kind = 'quiz_submitted'), 'UInt64') AS quiz_submissions,
    arrow_cast(avg(a.score) FILTER (WHERE a.kind = 'quiz_submitted'), 'Float64') AS avg_quiz_score
FROM staging.activity AS a
JOIN staging.courses AS c ON c.id = a.course_id
WHERE a.occurred_at >= TIMESTAMP '{{ lookback_start }}'
  AND a.occurred_at < TIMESTAMP '{{ data_interval_end }}'
GROUP BY 1, 2
ORDER BY day, course_code
