//! The JobTracker API's request and response types. The API derives its OpenAPI document from
//! them and the client deserialises with them, so the two cannot drift.

use std::fmt;

pub mod ids;
pub mod limits;

pub use ids::{ApplicationId, EventId, IdError, LeaseId, MachineId, QuestionId, ResumeId, UserId};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// Status of a job application. JSON uses the name; the API also accepts the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApplicationStatus {
    /// Tracked, not yet to be sent (0).
    Saved = 0,
    /// Ready for the applier once every question is answered (1).
    Queued = 1,
    /// Submitted by the applier (2).
    Submitted = 2,
    /// Interviewing (3).
    Interviewing = 3,
    /// Offer received (4).
    Offer = 4,
    /// Rejected by the company (5).
    Rejected = 5,
    /// Withdrawn by the candidate (6).
    Withdrawn = 6,
    /// The applier could not submit it (7).
    Failed = 7,
}

impl ApplicationStatus {
    /// Every status, in code order.
    pub const ALL: [Self; 8] = [
        Self::Saved,
        Self::Queued,
        Self::Submitted,
        Self::Interviewing,
        Self::Offer,
        Self::Rejected,
        Self::Withdrawn,
        Self::Failed,
    ];

    /// The stable numeric code.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The status with this code.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The JSON name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Saved => "saved",
            Self::Queued => "queued",
            Self::Submitted => "submitted",
            Self::Interviewing => "interviewing",
            Self::Offer => "offer",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
            Self::Failed => "failed",
        }
    }

    /// Parses a name (case-insensitive) or a number.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(n) = s.parse::<i64>() {
            return Self::from_code(n);
        }
        Self::ALL
            .into_iter()
            .find(|x| x.name().eq_ignore_ascii_case(s))
    }
}

impl utoipa::PartialSchema for ApplicationStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Self::ALL.map(Self::name)))
            .description(Some(
                "Application status. Requests may also send the stable number: saved=0, queued=1, submitted=2, interviewing=3, offer=4, rejected=5, withdrawn=6, failed=7.",
            ))
            .examples([serde_json::json!("queued")])
            .into()
    }
}

impl ToSchema for ApplicationStatus {}

impl fmt::Display for ApplicationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ApplicationStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ApplicationStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let parsed = match &v {
            serde_json::Value::String(s) => Self::parse(s),
            serde_json::Value::Number(n) => n.as_i64().and_then(Self::from_code),
            _ => None,
        };
        parsed.ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown status {v}: expected one of saved, queued, submitted, interviewing, offer, rejected, withdrawn, failed (or 0-7)"
            ))
        })
    }
}

/// `POST /api/users`: create or update the caller's own profile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserProfileInput {
    /// Full name.
    #[schema(example = "Alice Candidate", max_length = 200)]
    pub full_name: String,
    /// Contact email.
    #[schema(example = "alice@example.com", max_length = 320)]
    pub email: String,
    /// Contact phone.
    #[serde(default)]
    #[schema(max_length = 50)]
    pub phone: Option<String>,
    /// City, country.
    #[serde(default)]
    #[schema(example = "Berlin, Germany", max_length = 200)]
    pub location: Option<String>,
    /// One-line professional headline.
    #[serde(default)]
    #[schema(example = "Backend engineer (Rust, Postgres)", max_length = 300)]
    pub headline: Option<String>,
    /// Years of professional experience.
    #[serde(default)]
    #[schema(example = 7, maximum = 80)]
    pub years_experience: Option<u32>,
    /// Skills, most important first.
    #[serde(default)]
    #[schema(example = json!(["Rust", "PostgreSQL", "Kubernetes"]), max_items = 100)]
    pub skills: Vec<String>,
    /// Work authorisation, free text (e.g. "EU citizen").
    #[serde(default)]
    #[schema(example = "EU citizen", max_length = 300)]
    pub work_authorization: Option<String>,
    /// Whether visa sponsorship is needed.
    #[serde(default)]
    pub requires_sponsorship: Option<bool>,
    /// Salary expectation, free text.
    #[serde(default)]
    #[schema(example = "EUR 85,000", max_length = 200)]
    pub salary_expectation: Option<String>,
    /// Notice period in days.
    #[serde(default)]
    #[schema(example = 30, maximum = 730)]
    pub notice_period_days: Option<u32>,
    /// Willing to relocate.
    #[serde(default)]
    pub willing_to_relocate: Option<bool>,
    /// `remote`, `hybrid`, `onsite` or free text.
    #[serde(default)]
    #[schema(example = "remote", max_length = 100)]
    pub remote_preference: Option<String>,
    /// Portfolio, GitHub, LinkedIn…
    #[serde(default)]
    #[schema(example = json!(["https://github.com/alice"]), max_items = 20)]
    pub links: Vec<String>,
}

/// A user's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// The Clerk user id.
    #[schema(value_type = String, example = "user_2DemoAliceCandidate00000000", pattern = "^user_[A-Za-z0-9]{1,64}$")]
    pub id: UserId,
    /// The profile.
    #[serde(flatten)]
    pub profile: UserProfileInput,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// An uploaded resume (metadata; the bytes are at `/api/resumes/{id}/content`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Resume {
    /// `res_…`
    #[schema(value_type = String, pattern = "^res_[0-9a-f]{24}$")]
    pub id: ResumeId,
    /// Owner.
    #[schema(value_type = String, pattern = "^user_[A-Za-z0-9]{1,64}$")]
    pub user_id: UserId,
    /// Sanitised file name.
    #[schema(example = "cv.pdf")]
    pub file_name: String,
    /// `application/pdf`, DOCX or `text/plain`.
    #[schema(example = "application/pdf")]
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /api/job-applications`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    /// Company.
    #[schema(example = "Acme GmbH", max_length = 200)]
    pub company: String,
    /// Position.
    #[schema(example = "Senior Rust Engineer", max_length = 200)]
    pub position: String,
    /// Posting URL (http or https).
    #[serde(default)]
    #[schema(example = "https://jobs.example.com/123", max_length = 2000)]
    pub job_url: Option<String>,
    /// One of the caller's resumes.
    #[serde(default)]
    pub resume_id: Option<String>,
    /// Screening questions to answer.
    #[serde(default)]
    #[schema(example = json!(["How many years of Rust experience do you have?", "Do you require visa sponsorship?"]), max_items = 50)]
    pub questions: Vec<String>,
    /// `saved` (default) or `queued`.
    #[serde(default)]
    pub status: Option<ApplicationStatus>,
}

/// A screening question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Question {
    /// `q_…`
    #[schema(value_type = String, pattern = "^q_[0-9a-f]{24}$")]
    pub id: QuestionId,
    /// The application.
    #[schema(value_type = String, pattern = "^app_[0-9a-f]{24}$")]
    pub application_id: ApplicationId,
    /// The question.
    pub text: String,
    /// The answer, once given.
    pub answer: Option<String>,
    /// `user:…` or `machine:…`.
    pub answered_by: Option<String>,
    /// RFC 3339.
    pub answered_at: Option<String>,
    /// The representer could not ground an answer: a person must answer.
    pub needs_review: bool,
    /// Why review is needed.
    pub review_reason: Option<String>,
    /// Who asked for review: `user:…` when the candidate will answer it themselves (no bot may
    /// then answer it), `machine:…` when the representer could not ground an answer.
    #[serde(default)]
    pub review_requested_by: Option<String>,
}

/// A question with the context a bot needs to answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QuestionWithContext {
    /// The question.
    #[serde(flatten)]
    pub question: Question,
    /// The candidate.
    #[schema(value_type = String, pattern = "^user_[A-Za-z0-9]{1,64}$")]
    pub user_id: UserId,
    /// Company.
    pub company: String,
    /// Position.
    pub position: String,
}

/// A job application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Application {
    /// `app_…`
    #[schema(value_type = String, pattern = "^app_[0-9a-f]{24}$")]
    pub id: ApplicationId,
    /// The candidate.
    #[schema(value_type = String, pattern = "^user_[A-Za-z0-9]{1,64}$")]
    pub user_id: UserId,
    /// Company.
    pub company: String,
    /// Position.
    pub position: String,
    /// Posting URL.
    pub job_url: Option<String>,
    /// Resume to send.
    #[schema(value_type = Option<String>, pattern = "^res_[0-9a-f]{24}$")]
    pub resume_id: Option<ResumeId>,
    /// Status.
    pub status: ApplicationStatus,
    /// Why it failed or was rejected.
    pub reason: Option<String>,
    /// The submitter's reference, once submitted.
    pub submission_ref: Option<String>,
    /// `machine:…` holding the lease.
    pub claimed_by: Option<String>,
    /// RFC 3339; the lease lapses then.
    pub lease_expires_at: Option<String>,
    /// How many times an applier has claimed it.
    pub attempts: i64,
    /// Optimistic-concurrency version; bumped by every change.
    pub version: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Screening questions.
    pub questions: Vec<Question>,
}

/// `PATCH /api/job-applications/{id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    /// New status (name or number).
    pub status: ApplicationStatus,
    /// Reason (required for `failed`).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
    /// The job-applier's submission reference (with `submitted` only). Users may not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500)]
    pub submission_ref: Option<String>,
    /// When given, the change applies only if the application is still at this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<i64>,
    /// The job-applier's fencing token: the `lease_id` its claim returned. Required from the
    /// applier (a missing or superseded one gets 409); users may not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
}

/// `POST /api/job-applications/claim` and lease renewal (`PUT …/lease`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// Lease length in seconds (default 300, 10–3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 300, minimum = 10, maximum = 3600)]
    pub lease_seconds: Option<u32>,
    /// Renewal only: the `lease_id` the claim returned (missing or superseded: 409). A claim
    /// must not send one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_id: Option<String>,
}

/// `DELETE /api/job-applications/{id}/lease`: gives the claim back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRelease {
    /// The `lease_id` the claim returned (missing or superseded: 409).
    #[serde(default)]
    pub lease_id: Option<String>,
}

/// What `POST /api/job-applications/claim` returns: the application and the claim's fencing
/// token. Every later write of the claimant (`PATCH …/status`, `PUT`/`DELETE …/lease`) presents
/// `lease_id`; once another claim supersedes it, those writes get 409.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClaimedApplication {
    /// The application, now leased to the caller.
    #[serde(flatten)]
    pub application: Application,
    /// New for every claim (`lease_…`).
    #[schema(value_type = String, example = "lease_0190a1b2c3d4000001a1b2c3", pattern = "^lease_[0-9a-f]{24}$")]
    pub lease_id: LeaseId,
}

/// `PUT /api/job-applications/{id}/questions/{qid}/answer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    /// The answer; omit when marking for review.
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub answer: Option<String>,
    /// Mark for a person's review instead of answering.
    #[serde(default)]
    pub needs_review: bool,
    /// Why review is needed.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub review_reason: Option<String>,
}

/// An audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// `evt_…`
    #[schema(value_type = String, pattern = "^evt_[0-9a-f]{24}$")]
    pub id: EventId,
    /// The application.
    #[schema(value_type = String, pattern = "^app_[0-9a-f]{24}$")]
    pub application_id: ApplicationId,
    /// `user:user_…`, `user:user_… (act:user_…)` when an admin impersonated the user, or
    /// `machine:mch_…`.
    #[schema(example = "machine:mch_2JobApplierBot0000000000000")]
    pub actor: String,
    /// `created`, `status_changed`, `claimed`, `lease_renewed`, `lease_released`, `answered`, `marked_for_review`.
    pub action: String,
    /// Status before.
    pub from_status: Option<ApplicationStatus>,
    /// Status after.
    pub to_status: Option<ApplicationStatus>,
    /// Extra detail.
    pub detail: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/whoami`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Whoami {
    /// A person.
    User {
        /// `user_…`
        user_id: String,
        /// `sess_…`
        session_id: String,
        /// When someone is impersonating the user (Clerk's `act` claim): the impersonator's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
    },
    /// A service.
    Machine {
        /// `mch_…`
        machine_id: String,
        /// `mt_…` (the token id, not the token).
        token_id: String,
        /// Machines the token is valid for.
        scopes: Vec<String>,
        /// `candidate-representer`, `job-applier`, or null when the machine has no role.
        role: Option<String>,
    },
}

/// An RFC 9457 problem (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI for the kind of problem (`about:blank` when the status says it all).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong.
    pub detail: String,
    /// The offending field, for 422.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    /// `key` (`maxLength`, `maxItems`, `maximum`, …) of property `field` in `T`'s schema.
    fn constraint<T: PartialSchema>(field: &str, key: &str) -> Option<f64> {
        let schema = serde_json::to_value(T::schema()).ok()?;
        schema["properties"][field][key].as_f64()
    }

    /// utoipa takes only literals in `#[schema(max_length = …)]`: this holds them to
    /// [`limits`], which the API parses with.
    #[test]
    fn the_schema_states_the_limits_the_api_parses_with() {
        use limits::*;
        let n = |v: usize| Some(v as f64);
        let cases = [
            (
                "company",
                constraint::<CreateApplication>("company", "maxLength"),
                n(COMPANY_MAX_CHARS),
            ),
            (
                "position",
                constraint::<CreateApplication>("position", "maxLength"),
                n(POSITION_MAX_CHARS),
            ),
            (
                "job_url",
                constraint::<CreateApplication>("job_url", "maxLength"),
                n(URL_MAX_BYTES),
            ),
            (
                "questions",
                constraint::<CreateApplication>("questions", "maxItems"),
                n(QUESTIONS_MAX),
            ),
            (
                "reason",
                constraint::<StatusUpdate>("reason", "maxLength"),
                n(REASON_MAX_CHARS),
            ),
            (
                "submission_ref",
                constraint::<StatusUpdate>("submission_ref", "maxLength"),
                n(SUBMISSION_REF_MAX_CHARS),
            ),
            (
                "lease_seconds min",
                constraint::<LeaseRequest>("lease_seconds", "minimum"),
                Some(f64::from(LEASE_SECONDS_MIN)),
            ),
            (
                "lease_seconds max",
                constraint::<LeaseRequest>("lease_seconds", "maximum"),
                Some(f64::from(LEASE_SECONDS_MAX)),
            ),
            (
                "answer",
                constraint::<AnswerInput>("answer", "maxLength"),
                n(ANSWER_MAX_CHARS),
            ),
            (
                "review_reason",
                constraint::<AnswerInput>("review_reason", "maxLength"),
                n(REVIEW_REASON_MAX_CHARS),
            ),
            (
                "full_name",
                constraint::<UserProfileInput>("full_name", "maxLength"),
                n(FULL_NAME_MAX_CHARS),
            ),
            (
                "email",
                constraint::<UserProfileInput>("email", "maxLength"),
                n(EMAIL_MAX_CHARS),
            ),
            (
                "phone",
                constraint::<UserProfileInput>("phone", "maxLength"),
                n(PHONE_MAX_CHARS),
            ),
            (
                "location",
                constraint::<UserProfileInput>("location", "maxLength"),
                n(LOCATION_MAX_CHARS),
            ),
            (
                "headline",
                constraint::<UserProfileInput>("headline", "maxLength"),
                n(HEADLINE_MAX_CHARS),
            ),
            (
                "work_authorization",
                constraint::<UserProfileInput>("work_authorization", "maxLength"),
                n(WORK_AUTHORIZATION_MAX_CHARS),
            ),
            (
                "salary_expectation",
                constraint::<UserProfileInput>("salary_expectation", "maxLength"),
                n(SALARY_EXPECTATION_MAX_CHARS),
            ),
            (
                "remote_preference",
                constraint::<UserProfileInput>("remote_preference", "maxLength"),
                n(REMOTE_PREFERENCE_MAX_CHARS),
            ),
            (
                "years_experience",
                constraint::<UserProfileInput>("years_experience", "maximum"),
                Some(f64::from(YEARS_EXPERIENCE_MAX)),
            ),
            (
                "notice_period_days",
                constraint::<UserProfileInput>("notice_period_days", "maximum"),
                Some(f64::from(NOTICE_PERIOD_DAYS_MAX)),
            ),
            (
                "skills",
                constraint::<UserProfileInput>("skills", "maxItems"),
                n(SKILLS_MAX),
            ),
            (
                "links",
                constraint::<UserProfileInput>("links", "maxItems"),
                n(LINKS_MAX),
            ),
        ];
        for (field, stated, limit) in cases {
            assert_eq!(stated, limit, "{field}: the schema and limits.rs disagree");
        }
    }

    /// The `pattern` of `field` in `T`'s schema.
    fn pattern<T: PartialSchema>(field: &str) -> Option<String> {
        let schema = serde_json::to_value(T::schema()).ok()?;
        // A type with a flattened part (User) is an `allOf` of objects.
        let parts = schema["allOf"].as_array().cloned().unwrap_or_default();
        std::iter::once(&schema)
            .chain(&parts)
            .find_map(|s| s["properties"][field]["pattern"].as_str())
            .map(str::to_owned)
    }

    /// utoipa takes only literals in `#[schema(pattern = …)]`: this holds every id field's to
    /// its type's [`ids`] pattern (which a test there holds to the parser).
    #[test]
    fn the_schema_states_each_id_fields_pattern() {
        let cases = [
            (pattern::<User>("id"), UserId::PATTERN),
            (pattern::<Resume>("id"), ResumeId::PATTERN),
            (pattern::<Resume>("user_id"), UserId::PATTERN),
            (pattern::<Question>("id"), QuestionId::PATTERN),
            (
                pattern::<Question>("application_id"),
                ApplicationId::PATTERN,
            ),
            (pattern::<Application>("id"), ApplicationId::PATTERN),
            (pattern::<Application>("user_id"), UserId::PATTERN),
            (pattern::<Application>("resume_id"), ResumeId::PATTERN),
            (pattern::<Event>("id"), EventId::PATTERN),
            (pattern::<Event>("application_id"), ApplicationId::PATTERN),
        ];
        for (i, (stated, expected)) in cases.into_iter().enumerate() {
            assert_eq!(stated.as_deref(), Some(expected), "case {i}");
        }
    }
}
