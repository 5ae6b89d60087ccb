-- staging.activity: learning.activity events, each event_id once (delivery is
-- at-least-once). Copies of an event are identical, so which one is kept
-- does not matter; the order only makes the choice deterministic.
SELECT event_id, student_id, course_id, lesson_id, kind, occurred_at, duration_s, score
FROM (
    SELECT *, row_number() OVER (
        PARTITION BY event_id ORDER BY occurred_at, student_id
    ) AS copy_rank
    FROM raw.learning_activity
) AS copies
WHERE copy_rank = 1
