-- marts.course_engagement_daily: deduplicated learning events per day and
-- course. Incremental: a run recomputes the days from
-- {{ lookback_start }} up to the end of the logical date (events arrive up to
-- 48 h late); a course with no events on a day has no row.
-- Counted per student first, then per course: a grouped count(DISTINCT)
-- keeps a hash set per group, while two GROUP BYs stream.
WITH per_student AS (
    SELECT
        CAST(a.occurred_at AS DATE) AS day,
        a.course_id,
        a.student_id,
        count(*) FILTER (WHERE a.kind = 'lesson_completed') AS lessons_completed,
        count(*) FILTER (WHERE a.kind = 'quiz_submitted') AS quiz_submissions,
        sum(a.score) FILTER (WHERE a.kind = 'quiz_submitted') AS score_sum,
        count(a.score) FILTER (WHERE a.kind = 'quiz_submitted') AS scores
    FROM staging.activity AS a
    WHERE a.occurred_at >= TIMESTAMP '{{ lookback_start }}'
      AND a.occurred_at < TIMESTAMP '{{ data_interval_end }}'
    GROUP BY 1, 2, 3
)
SELECT
    p.day,
    c.code AS course_code,
    arrow_cast(count(*), 'UInt64') AS active_students,
    arrow_cast(sum(p.lessons_completed), 'UInt64') AS lessons_completed,
    arrow_cast(sum(p.quiz_submissions), 'UInt64') AS quiz_submissions,
    arrow_cast(sum(p.score_sum) / sum(p.scores), 'Float64') AS avg_quiz_score
FROM per_student AS p
JOIN staging.courses AS c ON c.id = p.course_id
GROUP BY 1, 2
ORDER BY day, course_code
