-- The `crm` schema of the education-CRM data contract (§1), with its rules
-- enforced by the database: other tools insert rows with plain SQL, so the
-- API is not the only guard.

CREATE SCHEMA IF NOT EXISTS crm;

-- `updated_at` moves on every change, whoever makes it.
CREATE OR REPLACE FUNCTION crm.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE crm.courses (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    code        text NOT NULL UNIQUE CHECK (length(btrim(code)) > 0),
    title       text NOT NULL CHECK (length(btrim(title)) > 0),
    category    text NOT NULL CHECK (length(btrim(category)) > 0),
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    starts_on   date NULL
);

CREATE TABLE crm.campaigns (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    name         text NOT NULL UNIQUE CHECK (length(btrim(name)) > 0),
    channel      text NOT NULL CHECK (channel IN ('email', 'whatsapp', 'push', 'ads', 'event')),
    starts_on    date NOT NULL,
    ends_on      date NULL,
    budget_cents bigint NOT NULL CHECK (budget_cents >= 0),
    currency     text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT campaigns_ends_on_check CHECK (ends_on IS NULL OR ends_on >= starts_on)
);

CREATE TABLE crm.leads (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    email              text NOT NULL CHECK (position('@' in email) > 1),
    full_name          text NOT NULL CHECK (length(btrim(full_name)) > 0),
    phone              text NULL,
    country            text NULL CHECK (country ~ '^[A-Z]{2}$'),
    source             text NOT NULL CHECK (source IN ('web', 'referral', 'ads', 'event', 'partner')),
    campaign_id        uuid NULL REFERENCES crm.campaigns (id),
    course_interest_id uuid NULL REFERENCES crm.courses (id),
    status             text NOT NULL DEFAULT 'new'
                       CHECK (status IN ('new', 'contacted', 'qualified', 'converted', 'lost')),
    marketing_opt_in   boolean NOT NULL DEFAULT false,
    converted_at       timestamptz NULL,
    student_id         uuid NULL,
    -- converted_at and student_id are set exactly when the lead is converted.
    CONSTRAINT leads_converted_iff_status CHECK (
        (status = 'converted' AND converted_at IS NOT NULL AND student_id IS NOT NULL)
        OR (status <> 'converted' AND converted_at IS NULL AND student_id IS NULL)
    )
);

CREATE TABLE crm.students (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    email            text NOT NULL UNIQUE CHECK (email = lower(email) AND position('@' in email) > 1),
    full_name        text NOT NULL CHECK (length(btrim(full_name)) > 0),
    country          text NULL CHECK (country ~ '^[A-Z]{2}$'),
    marketing_opt_in boolean NOT NULL DEFAULT false,
    lead_id          uuid NULL REFERENCES crm.leads (id)
);

ALTER TABLE crm.leads
    ADD CONSTRAINT leads_student_id_fkey FOREIGN KEY (student_id) REFERENCES crm.students (id)
    -- Deferrable so a bulk load can write leads before the students they became.
    DEFERRABLE INITIALLY IMMEDIATE;

CREATE TABLE crm.enrollments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    student_id   uuid NOT NULL REFERENCES crm.students (id),
    course_id    uuid NOT NULL REFERENCES crm.courses (id),
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'cancelled')),
    enrolled_at  timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz NULL,
    cancelled_at timestamptz NULL,
    CONSTRAINT enrollments_student_course_key UNIQUE (student_id, course_id),
    CONSTRAINT enrollments_completed_iff_status CHECK ((completed_at IS NOT NULL) = (status = 'completed')),
    CONSTRAINT enrollments_cancelled_iff_status CHECK ((cancelled_at IS NOT NULL) = (status = 'cancelled'))
);

CREATE TABLE crm.payments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    enrollment_id   uuid NOT NULL REFERENCES crm.enrollments (id),
    student_id      uuid NOT NULL REFERENCES crm.students (id),
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    provider        text NOT NULL CHECK (provider IN ('stripe', 'paypal')),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    paid_at         timestamptz NULL,
    refunded_at     timestamptz NULL,
    idempotency_key text NULL UNIQUE,
    -- paid_at is set when the money arrived (succeeded, later maybe refunded);
    -- refunded_at exactly when it went back.
    CONSTRAINT payments_paid_iff_status CHECK ((paid_at IS NOT NULL) = (status IN ('succeeded', 'refunded'))),
    CONSTRAINT payments_refunded_iff_status CHECK ((refunded_at IS NOT NULL) = (status = 'refunded')),
    CONSTRAINT payments_refund_after_payment CHECK (refunded_at IS NULL OR refunded_at >= paid_at)
);

-- Incremental extraction reads by updated_at; the API lists by (created_at, id).
CREATE INDEX courses_updated_at_idx ON crm.courses (updated_at);
CREATE INDEX courses_created_idx ON crm.courses (created_at, id);
CREATE INDEX campaigns_updated_at_idx ON crm.campaigns (updated_at);
CREATE INDEX campaigns_created_idx ON crm.campaigns (created_at, id);
CREATE INDEX leads_updated_at_idx ON crm.leads (updated_at);
CREATE INDEX leads_created_idx ON crm.leads (created_at, id);
CREATE INDEX leads_email_idx ON crm.leads (lower(email));
CREATE INDEX leads_campaign_idx ON crm.leads (campaign_id);
CREATE INDEX students_updated_at_idx ON crm.students (updated_at);
CREATE INDEX students_created_idx ON crm.students (created_at, id);
CREATE INDEX enrollments_updated_at_idx ON crm.enrollments (updated_at);
CREATE INDEX enrollments_created_idx ON crm.enrollments (created_at, id);
CREATE INDEX enrollments_course_idx ON crm.enrollments (course_id);
CREATE INDEX payments_updated_at_idx ON crm.payments (updated_at);
CREATE INDEX payments_created_idx ON crm.payments (created_at, id);
CREATE INDEX payments_enrollment_idx ON crm.payments (enrollment_id);
CREATE INDEX payments_student_idx ON crm.payments (student_id);

CREATE TRIGGER courses_touch BEFORE UPDATE ON crm.courses
    FOR EACH ROW EXECUTE FUNCTION crm.touch_updated_at();
CREATE TRIGGER campaigns_touch BEFORE UPDATE ON crm.campaigns
    FOR EACH ROW EXECUTE FUNCTION crm.touch_updated_at();
CREATE TRIGGER leads_touch BEFORE UPDATE ON crm.leads
    FOR EACH ROW EXECUTE FUNCTION crm.touch_updated_at();
CREATE TRIGGER students_touch BEFORE UPDATE ON crm.students
    FOR EACH ROW EXECUTE FUNCTION crm.touch_updated_at();
CREATE TRIGGER enrollments_touch BEFORE UPDATE ON crm.enrollments
    FOR EACH ROW EXECUTE FUNCTION crm.touch_updated_at();
CREATE TRIGGER payments_touch BEFORE UPDATE ON crm.payments
    FOR EACH ROW EXECUTE FUNCTION crm.touch_updated_at();

-- The transactional outbox: every change writes its `crm.events` message here
-- in the same transaction; the relay publishes and stamps `sent_at`.
CREATE TABLE crm.outbox (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    topic       text NOT NULL,
    key         text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz NULL,
    attempts    integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_unsent_idx ON crm.outbox (id) WHERE sent_at IS NULL;
