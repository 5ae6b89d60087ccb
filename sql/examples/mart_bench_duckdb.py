"""DuckDB side of the mart benchmark (`sql/examples/mart_bench.rs` drives it).

generate DIR STUDENTS PAYMENTS EVENTS
    Write a deterministic education-CRM dataset shaped like the lake's raw
    tables (`raw.crm_*`, `raw.learning_activity`) as Parquet under DIR/raw.
    Raw keeps several versions of some leads and payments and duplicated
    events, as the extractors do, so the staging models have real work.
run SPEC.json
    Run the steps of SPEC in order on one DuckDB connection and print one
    JSON line per step: {"name", "seconds", "rows"}. A step either writes its
    result as Parquet (`output`, like a staging model writing the lake) or
    materialises it as a temporary table (a mart read back by a dashboard).
"""

import json
import sys
import time

import duckdb


def connect(threads):
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    # DataFusion's type cast; the benchmark compares the queries, not casts.
    con.execute("CREATE MACRO arrow_cast(a, t) AS a")
    return con


def generate(out, students, payments, events):
    s, p, e = int(students), int(payments), int(events)
    leads = 4 * s
    enrollments = max(p // 2, 1)
    con = connect(2)
    ts0 = "TIMESTAMPTZ '2025-01-01 00:00:00+00'"
    span = "INTERVAL 1 SECOND * ((g * 2654435761) % 60000000)"  # ~23 months
    tables = {
        "crm_courses": f"""
            SELECT md5('course' || g) AS id, 'C' || lpad(g::VARCHAR, 4, '0') AS code,
                   'Course ' || g AS title, (['data','web','design','business'])[1 + g % 4] AS category,
                   10000 + (g % 50) * 500 AS price_cents, (['EUR','USD','GBP'])[1 + g % 3] AS currency,
                   DATE '2025-01-06' + (g % 600)::INT AS starts_on,
                   {ts0} AS created_at, {ts0} + INTERVAL 1 DAY * (g % 30) AS updated_at
            FROM range(300) t(g)""",
        "crm_campaigns": f"""
            SELECT md5('campaign' || g) AS id, 'Campaign ' || lpad(g::VARCHAR, 3, '0') AS name,
                   (['email','ads','social','events'])[1 + g % 4] AS channel,
                   DATE '2025-01-01' + (g * 3)::INT AS starts_on, DATE '2025-03-01' + (g * 3)::INT AS ends_on,
                   (g % 20 + 1) * 100000 AS budget_cents, (['EUR','USD','GBP'])[1 + g % 3] AS currency,
                   {ts0} + INTERVAL 1 DAY * (g * 3) AS created_at, {ts0} + INTERVAL 1 DAY * (g * 3) AS updated_at
            FROM range(200) t(g)""",
        "crm_students": f"""
            SELECT md5('student' || g) AS id, 'student' || g || '@example.com' AS email,
                   'Student ' || g AS full_name, (['ES','FR','DE','GB','US','BR','IN'])[1 + g % 7] AS country,
                   g % 3 <> 0 AS marketing_opt_in, md5('lead' || g) AS lead_id,
                   {ts0} + {span} AS created_at, {ts0} + {span} + INTERVAL 1 HOUR AS updated_at
            FROM range({s}) t(g)""",
        # Leads 0..s convert into student g; the rest never do (most) or are lost.
        # 10% carry an older second version.
        "crm_leads": f"""
            WITH base AS (
              SELECT g, md5('lead' || g) AS id, 'lead' || g || '@example.com' AS email,
                     'Lead ' || g AS full_name, '+34 600 ' || g AS phone,
                     (['ES','FR','DE','GB','US','BR','IN'])[1 + g % 7] AS country,
                     (['web','referral','ads','event','partner'])[1 + g % 5] AS source,
                     CASE WHEN g % 5 = 0 THEN NULL ELSE md5('campaign' || (g % 200)) END AS campaign_id,
                     md5('course' || (g % 300)) AS course_interest_id,
                     CASE WHEN g < {s} THEN 'converted'
                          ELSE (['new','contacted','qualified','lost'])[1 + g % 4] END AS status,
                     g % 3 = 0 AS marketing_opt_in,
                     {ts0} + {span} AS created_at
              FROM range({leads}) t(g))
            SELECT id, email, full_name, phone, country, source, campaign_id, course_interest_id, status,
                   marketing_opt_in,
                   CASE WHEN status = 'converted' THEN created_at + INTERVAL 3 DAY END AS converted_at,
                   CASE WHEN status = 'converted' THEN md5('student' || g) END AS student_id,
                   created_at, created_at + INTERVAL 4 DAY AS updated_at
            FROM base
            UNION ALL
            SELECT id, email, full_name, phone, country, source, campaign_id, course_interest_id, 'new',
                   marketing_opt_in, NULL, NULL, created_at, created_at + INTERVAL 1 HOUR
            FROM base WHERE g % 10 = 1""",
        "crm_enrollments": f"""
            WITH base AS (
              SELECT g, {ts0} + {span} AS enrolled_at FROM range({enrollments}) t(g))
            SELECT md5('enrollment' || g) AS id, md5('student' || ((g * 7919) % {s})) AS student_id,
                   md5('course' || (g % 300)) AS course_id,
                   CASE WHEN g % 10 < 4 THEN 'completed' WHEN g % 10 = 4 THEN 'cancelled' ELSE 'active' END AS status,
                   enrolled_at,
                   CASE WHEN g % 10 < 4 THEN enrolled_at + INTERVAL 60 DAY END AS completed_at,
                   CASE WHEN g % 10 = 4 THEN enrolled_at + INTERVAL 20 DAY END AS cancelled_at,
                   enrolled_at AS created_at, enrolled_at + INTERVAL 61 DAY AS updated_at
            FROM base""",
        # Payment g belongs to enrollment g % enrollments and is in that course's currency.
        "crm_payments": f"""
            WITH base AS (
              SELECT g, g % {enrollments} AS e, {ts0} + {span} AS paid_at FROM range({p}) t(g)),
            rows AS (
              SELECT md5('payment' || g) AS id, md5('enrollment' || e) AS enrollment_id,
                     md5('student' || ((e * 7919) % {s})) AS student_id,
                     5000 + (g % 40) * 250 AS amount_cents, (['EUR','USD','GBP'])[1 + (e % 300) % 3] AS currency,
                     (['stripe','paypal','bank'])[1 + g % 3] AS provider,
                     CASE WHEN g % 20 = 0 THEN 'refunded' WHEN g % 20 = 1 THEN 'failed'
                          WHEN g % 20 = 2 THEN 'pending' ELSE 'succeeded' END AS status,
                     paid_at,
                     CASE WHEN g % 20 = 0 THEN paid_at + INTERVAL 70 DAY END AS refunded_at,
                     'idem-' || g AS idempotency_key, paid_at AS created_at,
                     paid_at + INTERVAL 1 DAY * (CASE WHEN g % 20 = 0 THEN 71 ELSE 0 END) + INTERVAL 1 MINUTE AS updated_at,
                     g
              FROM base)
            SELECT * EXCLUDE (g) FROM rows
            UNION ALL
            SELECT id, enrollment_id, student_id, amount_cents, currency, provider, 'pending', paid_at, NULL,
                   idempotency_key, created_at, created_at
            FROM rows WHERE g % 10 = 3""",
        # Every 50th event is delivered twice (at-least-once), same payload.
        "learning_activity": f"""
            WITH base AS (
              SELECT g, (['lesson_started','lesson_completed','quiz_submitted','video_watched','login'])[1 + g % 5] AS kind
              FROM range({e}) t(g)),
            rows AS (
              SELECT md5('event' || g) AS event_id, md5('student' || ((g * 31) % {s})) AS student_id,
                     md5('course' || (g % 300)) AS course_id, 'L' || (g % 40) AS lesson_id, kind,
                     {ts0} + {span} AS occurred_at, (g % 3600)::BIGINT AS duration_s,
                     CASE WHEN kind = 'quiz_submitted' THEN (g % 101)::DOUBLE END AS score,
                     'learning.activity' AS _topic, (g % 32)::INT AS _partition, (g // 32)::BIGINT AS _offset, g
              FROM base)
            SELECT * EXCLUDE (g) FROM rows
            UNION ALL
            SELECT * EXCLUDE (g) FROM rows WHERE g % 50 = 7""",
    }
    import os

    for name, sql in tables.items():
        folder = os.path.join(out, "raw", name)
        os.makedirs(folder, exist_ok=True)
        start = time.perf_counter()
        n = con.execute(
            f"COPY ({sql}) TO '{folder}/part-0.parquet' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 131072)"
        ).fetchone()[0]
        print(json.dumps({"table": f"raw.{name}", "rows": n, "seconds": time.perf_counter() - start}), flush=True)


def run(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    con = connect(spec["threads"])
    for name, glob in spec["views"].items():
        schema, table = name.split(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE OR REPLACE VIEW {schema}.{table} AS SELECT * FROM read_parquet('{glob}')")
    for step in spec["steps"]:
        sql = step["sql"].strip().rstrip(";")
        start = time.perf_counter()
        if step.get("output"):
            rows = con.execute(f"COPY ({sql}) TO '{step['output']}' (FORMAT parquet, COMPRESSION snappy)").fetchone()[0]
            seconds = time.perf_counter() - start
        else:
            con.execute(f"CREATE OR REPLACE TEMP TABLE bench_result AS {sql}")
            seconds = time.perf_counter() - start
            rows = con.execute("SELECT count(*) FROM bench_result").fetchone()[0]
        print(json.dumps({"name": step["name"], "seconds": seconds, "rows": rows}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(*sys.argv[2:6])
    elif sys.argv[1] == "run":
        run(sys.argv[2])
    else:
        sys.exit(f"unknown command {sys.argv[1]!r}")
