//! Applications, status changes, leases and answers, as parsed from their requests.

use jobtracker_types::{AnswerInput, ApplicationStatus, CreateApplication, ResumeId, StatusUpdate};

use super::{Invalid, Text, Url, limits};

/// An application to create: `POST /api/job-applications` parsed. Company, position and
/// questions are trimmed; the status is `saved` (the default) or `queued`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApplication {
    /// The company.
    pub company: Text,
    /// The position.
    pub position: Text,
    /// The posting, as sent.
    pub job_url: Option<Url>,
    /// One of the caller's resumes (`res_…`); that it is the caller's is the handler's to check.
    pub resume_id: Option<ResumeId>,
    /// The screening questions, in order.
    pub questions: Vec<Text>,
    /// `saved` or `queued`.
    pub status: ApplicationStatus,
}

impl NewApplication {
    /// Parses a create request; the first field that breaks a rule is refused.
    pub fn parse(input: CreateApplication) -> Result<Self, Invalid> {
        let company = Text::parse("company", input.company, limits::COMPANY_MAX_CHARS)?.trimmed();
        let position =
            Text::parse("position", input.position, limits::POSITION_MAX_CHARS)?.trimmed();
        let job_url = input
            .job_url
            .map(|u| Url::parse("job_url", u))
            .transpose()?;
        if input.questions.len() > limits::QUESTIONS_MAX {
            return Err(Invalid::new(
                "questions",
                format!("at most {} questions", limits::QUESTIONS_MAX),
            ));
        }
        let questions = input
            .questions
            .into_iter()
            .map(|q| Text::parse("questions", q, limits::QUESTION_MAX_CHARS).map(Text::trimmed))
            .collect::<Result<Vec<_>, _>>()?;
        let status = input.status.unwrap_or(ApplicationStatus::Saved);
        if !matches!(status, ApplicationStatus::Saved | ApplicationStatus::Queued) {
            return Err(Invalid::new(
                "status",
                "a new application is saved or queued",
            ));
        }
        let resume_id = input.resume_id.as_deref().map(super::id).transpose()?;
        Ok(Self {
            company,
            position,
            job_url,
            resume_id,
            questions,
            status,
        })
    }
}

/// `PATCH …/status` parsed: its texts checked. Whether the caller may send what it sent, and
/// whether the move is allowed, depend on the caller and the application: the handler's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRequest {
    /// The new status.
    pub status: ApplicationStatus,
    /// Why, as sent.
    pub reason: Option<Text>,
    /// The job-applier's submission reference, as sent.
    pub submission_ref: Option<Text>,
    /// The version the change applies to, if given.
    pub expected_version: Option<i64>,
    /// The claim's fencing token as sent; checked when the caller must present one.
    pub lease_id: Option<String>,
}

impl StatusRequest {
    /// Parses a status change request.
    pub fn parse(input: StatusUpdate) -> Result<Self, Invalid> {
        Ok(Self {
            status: input.status,
            reason: Text::parse_opt("reason", input.reason, limits::REASON_MAX_CHARS)?,
            submission_ref: Text::parse_opt(
                "submission_ref",
                input.submission_ref,
                limits::SUBMISSION_REF_MAX_CHARS,
            )?,
            expected_version: input.expected_version,
            lease_id: input.lease_id,
        })
    }
}

/// How long a claim or renewal leases the application: [`limits::LEASE_SECONDS_DEFAULT`] unless
/// `lease_seconds` asks for [`limits::LEASE_SECONDS_MIN`] to [`limits::LEASE_SECONDS_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseLength {
    seconds: u32,
}

impl LeaseLength {
    /// The length `lease_seconds` asks for.
    pub fn parse(lease_seconds: Option<u32>) -> Result<Self, Invalid> {
        match lease_seconds {
            None => Ok(Self {
                seconds: limits::LEASE_SECONDS_DEFAULT,
            }),
            Some(s) if (limits::LEASE_SECONDS_MIN..=limits::LEASE_SECONDS_MAX).contains(&s) => {
                Ok(Self { seconds: s })
            }
            Some(_) => Err(Invalid::new(
                "lease_seconds",
                format!(
                    "lease_seconds must be between {} and {}",
                    limits::LEASE_SECONDS_MIN,
                    limits::LEASE_SECONDS_MAX
                ),
            )),
        }
    }

    /// In milliseconds, as the store keeps times.
    pub fn millis(self) -> i64 {
        i64::from(self.seconds) * 1000
    }
}

/// What an answer request puts into a question: `PUT …/answer` parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An answer (trimmed). A `review_reason` sent along is stored as sent.
    Answer {
        /// The answer.
        text: Text,
        /// Stored as sent.
        review_reason: Option<Text>,
    },
    /// No answer: a person should look at the question first.
    NeedsReview {
        /// Why, as sent.
        reason: Option<Text>,
    },
}

impl Reply {
    /// Parses an answer request: an answer, or a mark for review, not both nor neither. The
    /// review reason is checked whichever carries it: it is stored and shown to people.
    pub fn parse(input: AnswerInput) -> Result<Self, Invalid> {
        let reason = Text::parse_opt(
            "review_reason",
            input.review_reason,
            limits::REVIEW_REASON_MAX_CHARS,
        )?;
        match (input.answer, input.needs_review) {
            (Some(a), false) => Ok(Self::Answer {
                text: Text::parse("answer", a, limits::ANSWER_MAX_CHARS)?.trimmed(),
                review_reason: reason,
            }),
            (None, true) => Ok(Self::NeedsReview { reason }),
            (Some(_), true) => Err(Invalid::new(
                "needs_review",
                "give an answer or mark for review, not both",
            )),
            (None, false) => Err(Invalid::new(
                "answer",
                "an answer is required unless needs_review is true",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create() -> CreateApplication {
        CreateApplication {
            company: "  Acme  ".into(),
            position: "Engineer".into(),
            questions: vec![" Why us? ".into()],
            ..Default::default()
        }
    }

    /// A way to break the input, the field refused and the detail.
    type Case = (fn(&mut CreateApplication), &'static str, &'static str);

    #[test]
    fn a_new_application_is_trimmed_and_saved_by_default() {
        let new = NewApplication::parse(create()).expect("valid");
        assert_eq!(new.company.as_str(), "Acme");
        assert_eq!(new.questions[0].as_str(), "Why us?");
        assert_eq!(new.status, ApplicationStatus::Saved);
    }

    #[test]
    fn a_new_application_is_refused_on_its_first_bad_field() {
        let cases: [Case; 6] = [
            (
                |c| c.company = "a".repeat(201),
                "company",
                "company must be at most 200 characters",
            ),
            (
                |c| c.position = " ".into(),
                "position",
                "position must not be empty",
            ),
            (
                |c| c.job_url = Some("javascript:x".into()),
                "job_url",
                "job_url must be an http(s) URL",
            ),
            (
                |c| c.questions = vec!["q".into(); 51],
                "questions",
                "at most 50 questions",
            ),
            (
                |c| c.status = Some(ApplicationStatus::Offer),
                "status",
                "a new application is saved or queued",
            ),
            (
                |c| c.resume_id = Some("res_x".into()),
                "resume_id",
                "resume_id must be a res_ id",
            ),
        ];
        for (breaks, field, detail) in cases {
            let mut input = create();
            breaks(&mut input);
            assert_eq!(
                NewApplication::parse(input),
                Err(Invalid::new(field, detail))
            );
        }
        let mut input = create();
        input.company = String::new();
        input.position = String::new();
        assert_eq!(
            NewApplication::parse(input).expect_err("both bad").field,
            "company"
        );
    }

    #[test]
    fn lease_lengths_default_and_stay_in_range() {
        assert_eq!(
            LeaseLength::parse(None).map(LeaseLength::millis),
            Ok(300_000)
        );
        assert_eq!(
            LeaseLength::parse(Some(10)).map(LeaseLength::millis),
            Ok(10_000)
        );
        assert_eq!(
            LeaseLength::parse(Some(3600)).map(LeaseLength::millis),
            Ok(3_600_000)
        );
        for bad in [0, 9, 3601] {
            assert_eq!(
                LeaseLength::parse(Some(bad)),
                Err(Invalid::new(
                    "lease_seconds",
                    "lease_seconds must be between 10 and 3600"
                ))
            );
        }
    }

    #[test]
    fn a_reply_is_an_answer_or_a_review_mark() {
        let answer = |answer: Option<&str>, needs_review, reason: Option<&str>| AnswerInput {
            answer: answer.map(str::to_owned),
            needs_review,
            review_reason: reason.map(str::to_owned),
        };
        let Ok(Reply::Answer {
            text,
            review_reason,
        }) = Reply::parse(answer(Some(" 7 "), false, Some("check")))
        else {
            panic!("an answer");
        };
        assert_eq!(
            (text.as_str(), review_reason.as_deref()),
            ("7", Some("check"))
        );
        assert!(matches!(
            Reply::parse(answer(None, true, None)),
            Ok(Reply::NeedsReview { reason: None })
        ));
        let refused = [
            (answer(Some("7"), true, None), "needs_review"),
            (answer(None, false, None), "answer"),
            (answer(Some(""), false, None), "answer"),
            (answer(None, true, Some(&"r".repeat(1001))), "review_reason"),
            // The reason is checked before the answer.
            (answer(Some(""), false, Some("\u{7}")), "review_reason"),
        ];
        for (input, field) in refused {
            assert_eq!(Reply::parse(input).expect_err("refused").field, field);
        }
    }
}
