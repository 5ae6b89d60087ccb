-- staging.activity: learning.activity events, each event_id once (delivery is
-- at-least-once); the copy that reached the broker first wins.
SELECT event_id, student_id, course_id, lesson_id, kind, occurred_at, duration_s, score
FROM (
    SELECT *, row_number() OVER (
        PARTITION BY event_id ORDER BY _partition, _offset
    ) AS copy_rank
    FROM raw.learning_activity
) AS copies
WHERE copy_rank = 1
