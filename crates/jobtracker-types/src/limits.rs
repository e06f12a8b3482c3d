//! The API's limits on what clients send, one constant each. The API parses requests against
//! them (docs/api.md, *Limits*); the OpenAPI schema states the same numbers as `maxLength` and
//! `maxItems` (utoipa takes only literals there, so a test compares the two), and a client can
//! check a value before sending it. Text limits count characters (Unicode scalar values) of the
//! trimmed text.

/// `company` of an application.
pub const COMPANY_MAX_CHARS: usize = 200;
/// `position` of an application.
pub const POSITION_MAX_CHARS: usize = 200;
/// Screening questions of one application.
pub const QUESTIONS_MAX: usize = 50;
/// One screening question.
pub const QUESTION_MAX_CHARS: usize = 1000;
/// An answer to a screening question.
pub const ANSWER_MAX_CHARS: usize = 5000;
/// Why a question needs a person's review.
pub const REVIEW_REASON_MAX_CHARS: usize = 1000;
/// The reason of a status change.
pub const REASON_MAX_CHARS: usize = 2000;
/// The job-applier's submission reference.
pub const SUBMISSION_REF_MAX_CHARS: usize = 500;
/// A URL (`job_url`, profile `links`), in bytes: printable ASCII only.
pub const URL_MAX_BYTES: usize = 2000;
/// `full_name` of a profile.
pub const FULL_NAME_MAX_CHARS: usize = 200;
/// `email` of a profile (RFC 5321's longest path).
pub const EMAIL_MAX_CHARS: usize = 320;
/// `phone` of a profile.
pub const PHONE_MAX_CHARS: usize = 50;
/// `location` of a profile.
pub const LOCATION_MAX_CHARS: usize = 200;
/// `headline` of a profile.
pub const HEADLINE_MAX_CHARS: usize = 300;
/// `work_authorization` of a profile.
pub const WORK_AUTHORIZATION_MAX_CHARS: usize = 300;
/// `salary_expectation` of a profile.
pub const SALARY_EXPECTATION_MAX_CHARS: usize = 200;
/// `remote_preference` of a profile.
pub const REMOTE_PREFERENCE_MAX_CHARS: usize = 100;
/// `years_experience` of a profile.
pub const YEARS_EXPERIENCE_MAX: u32 = 80;
/// `notice_period_days` of a profile (two years).
pub const NOTICE_PERIOD_DAYS_MAX: u32 = 730;
/// `skills` of a profile.
pub const SKILLS_MAX: usize = 100;
/// One skill.
pub const SKILL_MAX_CHARS: usize = 100;
/// `links` of a profile.
pub const LINKS_MAX: usize = 20;
/// A resume's file name.
pub const FILE_NAME_MAX_CHARS: usize = 255;
/// Lease length a claim gets when it asks for none, in seconds.
pub const LEASE_SECONDS_DEFAULT: u32 = 300;
/// Shortest lease a claim or renewal may ask for, in seconds.
pub const LEASE_SECONDS_MIN: u32 = 10;
/// Longest lease a claim or renewal may ask for, in seconds.
pub const LEASE_SECONDS_MAX: u32 = 3600;
/// Page size of a list when `limit` is not given.
pub const PAGE_SIZE_DEFAULT: i64 = 50;
/// Largest page size a list gives (`limit`).
pub const PAGE_SIZE_MAX: i64 = 200;
