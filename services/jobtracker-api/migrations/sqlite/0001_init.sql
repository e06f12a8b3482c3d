CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    full_name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT,
    location TEXT,
    headline TEXT,
    years_experience INTEGER,
    skills TEXT NOT NULL,
    work_authorization TEXT,
    requires_sponsorship INTEGER,
    salary_expectation TEXT,
    notice_period_days INTEGER,
    willing_to_relocate INTEGER,
    remote_preference TEXT,
    links TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE resumes (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX resumes_user ON resumes(user_id, id);

CREATE TABLE job_applications (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    company TEXT NOT NULL,
    position TEXT NOT NULL,
    job_url TEXT,
    resume_id TEXT REFERENCES resumes(id),
    status INTEGER NOT NULL,
    reason TEXT,
    submission_ref TEXT,
    claimed_by TEXT,
    lease_expires_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX applications_user ON job_applications(user_id, id);
CREATE INDEX applications_ready ON job_applications(status, lease_expires_at);

CREATE TABLE questions (
    id TEXT PRIMARY KEY NOT NULL,
    application_id TEXT NOT NULL REFERENCES job_applications(id),
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    answer TEXT,
    answered_by TEXT,
    answered_at INTEGER,
    needs_review INTEGER NOT NULL DEFAULT 0,
    review_reason TEXT
);
CREATE INDEX questions_application ON questions(application_id, position);

CREATE TABLE events (
    id TEXT PRIMARY KEY NOT NULL,
    application_id TEXT NOT NULL REFERENCES job_applications(id),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status INTEGER,
    to_status INTEGER,
    detail TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX events_application ON events(application_id, id);
