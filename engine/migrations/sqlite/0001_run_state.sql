-- Run state: runs, task instances, every try, task logs. Times are microseconds since the Unix epoch.
CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    pipeline_id      TEXT NOT NULL,
    logical_date     BIGINT NOT NULL,
    interval_end     BIGINT NOT NULL,
    run_type         TEXT NOT NULL,
    state            TEXT NOT NULL,
    params           TEXT NOT NULL DEFAULT '{}',
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    ended_at         BIGINT,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    UNIQUE (pipeline_id, logical_date)
);
CREATE INDEX runs_by_state ON runs (state, logical_date);

CREATE TABLE task_instances (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL,
    state       TEXT NOT NULL,
    try_number  BIGINT NOT NULL DEFAULT 0,
    next_try_at BIGINT,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (run_id, task_id)
);

CREATE TABLE task_tries (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id    TEXT NOT NULL,
    try_number BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at   BIGINT,
    outcome    TEXT,
    error      TEXT,
    worker     TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id, try_number)
);

CREATE TABLE task_logs (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id    TEXT NOT NULL,
    try_number BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    ts         BIGINT NOT NULL,
    stream     TEXT NOT NULL,
    line       TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id, try_number, seq)
);
