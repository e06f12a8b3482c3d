//! A candidate's profile, as parsed from `POST /api/users`.

use jobtracker_types::UserProfileInput;

use super::{Invalid, Text, Url, limits};

/// A profile that keeps every rule: the fields are stored as sent, so the checked request is
/// kept whole, and only [`Profile::parse`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile(UserProfileInput);

impl Profile {
    /// Parses a profile; the first field that breaks a rule is refused.
    pub fn parse(p: UserProfileInput) -> Result<Self, Invalid> {
        let text = |field, value: &str, max| Text::parse(field, value.to_owned(), max).map(drop);
        text("full_name", &p.full_name, limits::FULL_NAME_MAX_CHARS)?;
        text("email", &p.email, limits::EMAIL_MAX_CHARS)?;
        if !p.email.contains('@') {
            return Err(Invalid::new("email", "email must be an email address"));
        }
        for (field, value, max) in [
            ("phone", &p.phone, limits::PHONE_MAX_CHARS),
            ("location", &p.location, limits::LOCATION_MAX_CHARS),
            ("headline", &p.headline, limits::HEADLINE_MAX_CHARS),
            (
                "work_authorization",
                &p.work_authorization,
                limits::WORK_AUTHORIZATION_MAX_CHARS,
            ),
            (
                "salary_expectation",
                &p.salary_expectation,
                limits::SALARY_EXPECTATION_MAX_CHARS,
            ),
            (
                "remote_preference",
                &p.remote_preference,
                limits::REMOTE_PREFERENCE_MAX_CHARS,
            ),
        ] {
            if let Some(v) = value {
                text(field, v, max)?;
            }
        }
        for (field, value, max) in [
            (
                "years_experience",
                p.years_experience,
                limits::YEARS_EXPERIENCE_MAX,
            ),
            (
                "notice_period_days",
                p.notice_period_days,
                limits::NOTICE_PERIOD_DAYS_MAX,
            ),
        ] {
            if value.is_some_and(|v| v > max) {
                return Err(Invalid::new(
                    field,
                    format!("{field} must be at most {max}"),
                ));
            }
        }
        if p.skills.len() > limits::SKILLS_MAX {
            return Err(Invalid::new(
                "skills",
                format!("at most {} skills", limits::SKILLS_MAX),
            ));
        }
        for s in &p.skills {
            text("skills", s, limits::SKILL_MAX_CHARS)?;
        }
        if p.links.len() > limits::LINKS_MAX {
            return Err(Invalid::new(
                "links",
                format!("at most {} links", limits::LINKS_MAX),
            ));
        }
        for l in &p.links {
            Url::parse("links", l.clone())?;
        }
        Ok(Self(p))
    }

    /// The fields, as sent.
    pub fn fields(&self) -> &UserProfileInput {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserProfileInput {
        UserProfileInput {
            full_name: " Alice ".into(),
            email: "alice@example.com".into(),
            skills: vec!["Rust".into()],
            ..Default::default()
        }
    }

    /// A way to break the input, the field refused and the detail.
    type Case = (fn(&mut UserProfileInput), &'static str, &'static str);

    #[test]
    fn a_profile_is_kept_as_sent() {
        let p = Profile::parse(alice()).expect("valid");
        assert_eq!(p.fields(), &alice());
    }

    #[test]
    fn a_profile_is_refused_on_its_first_bad_field() {
        let cases: [Case; 8] = [
            (
                |p| p.email = "alice".into(),
                "email",
                "email must be an email address",
            ),
            (
                |p| p.phone = Some("1".repeat(51)),
                "phone",
                "phone must be at most 50 characters",
            ),
            (
                |p| p.years_experience = Some(81),
                "years_experience",
                "years_experience must be at most 80",
            ),
            (
                |p| p.notice_period_days = Some(731),
                "notice_period_days",
                "notice_period_days must be at most 730",
            ),
            (
                |p| p.skills = vec!["s".into(); 101],
                "skills",
                "at most 100 skills",
            ),
            (
                |p| p.skills = vec!["s".repeat(101)],
                "skills",
                "skills must be at most 100 characters",
            ),
            (
                |p| p.links = vec!["https://a.example".into(); 21],
                "links",
                "at most 20 links",
            ),
            (
                |p| p.links = vec!["mailto:a@example.com".into()],
                "links",
                "links must be an http(s) URL",
            ),
        ];
        for (breaks, field, detail) in cases {
            let mut input = alice();
            breaks(&mut input);
            assert_eq!(Profile::parse(input), Err(Invalid::new(field, detail)));
        }
    }
}
