//! Deterministic answers grounded in the candidate's profile. A question no rule understands,
//! or one whose answer the profile does not hold, is marked for review: nothing is invented.

use jobtracker_types::UserProfileInput;
use serde::Serialize;

/// The outcome for one question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The answer, when grounded.
    pub answer: Option<String>,
    /// Why a person must answer instead.
    pub review_reason: Option<String>,
    /// Which rule decided (`experience`, `skill`, … or `none`).
    pub rule: &'static str,
}

impl Outcome {
    fn answer(rule: &'static str, text: String) -> Self {
        Self {
            answer: Some(text),
            review_reason: None,
            rule,
        }
    }

    fn review(rule: &'static str, why: impl Into<String>) -> Self {
        Self {
            answer: None,
            review_reason: Some(why.into()),
            rule,
        }
    }
}

fn has(q: &str, words: &[&str]) -> bool {
    words.iter().any(|w| q.contains(w))
}

fn skill_in(q: &str, skills: &[String]) -> Option<String> {
    // Longest first so "PostgreSQL" wins over "SQL".
    let mut sorted: Vec<&String> = skills.iter().collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    sorted
        .into_iter()
        .find(|s| contains_word(q, &s.to_lowercase()))
        .cloned()
}

fn contains_word(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    haystack.match_indices(needle).any(|(i, _)| {
        let before = haystack[..i].chars().next_back();
        let after = haystack[i + needle.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        boundary(before) && boundary(after)
    })
}

/// A technology the question asks about, e.g. "Go" in "experience with Go?".
fn asked_technology(q: &str) -> Option<String> {
    for marker in [
        "experience with ",
        "experience in ",
        "familiar with ",
        "proficient in ",
        "proficient with ",
        "know ",
        "worked with ",
        "years of ",
    ] {
        if let Some(i) = q.find(marker) {
            let rest = &q[i + marker.len()..];
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '+' | '#' | '.' | '-'))
                .collect();
            let word = word.trim_end_matches('.').to_owned();
            if !word.is_empty()
                && !matches!(
                    word.as_str(),
                    "experience" | "professional" | "work" | "relevant" | "the" | "a" | "an"
                )
            {
                return Some(word);
            }
        }
    }
    None
}

fn yes_no(b: bool) -> &'static str {
    if b { "Yes" } else { "No" }
}

/// Answers `question` from `profile`.
pub fn answer(question: &str, p: &UserProfileInput) -> Outcome {
    let q = question.to_lowercase();
    let missing = |rule, what: &str| Outcome::review(rule, format!("the profile has no {what}"));

    if has(&q, &["sponsor", "visa"]) {
        return match p.requires_sponsorship {
            Some(true) => Outcome::answer(
                "sponsorship",
                "Yes, I will require visa sponsorship.".into(),
            ),
            Some(false) => Outcome::answer(
                "sponsorship",
                "No, I do not require visa sponsorship.".into(),
            ),
            None => missing("sponsorship", "sponsorship requirement"),
        };
    }
    if has(
        &q,
        &[
            "authorized to work",
            "authorised to work",
            "work authorization",
            "work authorisation",
            "right to work",
            "legally allowed",
            "eligible to work",
            "work permit",
        ],
    ) {
        return match &p.work_authorization {
            Some(a) => Outcome::answer("work_authorization", a.clone()),
            None => missing("work_authorization", "work authorisation"),
        };
    }
    if has(
        &q,
        &[
            "salary",
            "compensation",
            "pay expectation",
            "expected pay",
            "remuneration",
        ],
    ) {
        return match &p.salary_expectation {
            Some(s) => Outcome::answer("salary", format!("My salary expectation is {s}.")),
            None => missing("salary", "salary expectation"),
        };
    }
    if has(
        &q,
        &[
            "notice period",
            "start date",
            "when can you start",
            "available to start",
            "earliest start",
            "how soon",
        ],
    ) {
        return match p.notice_period_days {
            Some(0) => Outcome::answer("notice_period", "I can start immediately.".into()),
            Some(d) => Outcome::answer(
                "notice_period",
                format!(
                    "My notice period is {d} days, so I can start {d} days after accepting an offer."
                ),
            ),
            None => missing("notice_period", "notice period"),
        };
    }
    if has(&q, &["relocat"]) {
        return match p.willing_to_relocate {
            Some(b) => Outcome::answer(
                "relocation",
                format!(
                    "{}, I am {}willing to relocate.",
                    yes_no(b),
                    if b { "" } else { "not " }
                ),
            ),
            None => missing("relocation", "relocation preference"),
        };
    }
    if has(
        &q,
        &[
            "remote",
            "on-site",
            "onsite",
            "on site",
            "hybrid",
            "in the office",
            "in-office",
            "work from home",
        ],
    ) {
        return match &p.remote_preference {
            Some(r) => Outcome::answer("remote", format!("My preference is: {r}.")),
            None => missing("remote", "remote-work preference"),
        };
    }
    if has(
        &q,
        &[
            "linkedin",
            "github",
            "portfolio",
            "website",
            "personal site",
            "links",
        ],
    ) {
        let wanted = ["linkedin", "github", "gitlab"]
            .into_iter()
            .find(|h| q.contains(h));
        let links: Vec<&String> = match wanted {
            Some(host) => p
                .links
                .iter()
                .filter(|l| l.to_lowercase().contains(host))
                .collect(),
            None => p.links.iter().collect(),
        };
        return if links.is_empty() {
            missing("links", wanted.map_or("links", |h| h))
        } else {
            Outcome::answer(
                "links",
                links
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        };
    }
    if has(&q, &["email", "e-mail"]) {
        return Outcome::answer("contact", p.email.clone());
    }
    if has(&q, &["phone", "telephone", "mobile number", "reach you"]) {
        return match &p.phone {
            Some(ph) => Outcome::answer("contact", ph.clone()),
            None => missing("contact", "phone number"),
        };
    }
    if has(
        &q,
        &[
            "where are you located",
            "where are you based",
            "your location",
            "current location",
            "which city",
            "where do you live",
        ],
    ) {
        return match &p.location {
            Some(l) => Outcome::answer("location", l.clone()),
            None => missing("location", "location"),
        };
    }
    if has(
        &q,
        &[
            "years of",
            "how many years",
            "how long have you",
            "experience",
        ],
    ) {
        let tech = asked_technology(&q);
        let matched = skill_in(&q, &p.skills);
        return match (p.years_experience, tech, matched) {
            (Some(y), _, Some(skill)) => Outcome::answer(
                "experience",
                format!(
                    "I have {y} years of professional experience, and {skill} is one of my core skills."
                ),
            ),
            (_, Some(t), None) if !is_generic(&t) => {
                Outcome::review("skill", format!("the profile does not list {t}"))
            }
            (Some(y), _, None) => Outcome::answer(
                "experience",
                format!("I have {y} years of professional experience."),
            ),
            (None, _, _) => missing("experience", "years of experience"),
        };
    }
    if has(
        &q,
        &[
            "familiar with",
            "proficient",
            "do you know",
            "have you used",
            "worked with",
            "skills",
        ],
    ) {
        if let Some(skill) = skill_in(&q, &p.skills) {
            return Outcome::answer("skill", format!("Yes, {skill} is one of my core skills."));
        }
        if has(
            &q,
            &["your skills", "what skills", "key skills", "main skills"],
        ) && !p.skills.is_empty()
        {
            return Outcome::answer("skill", p.skills.join(", "));
        }
        return Outcome::review("skill", "the profile does not list that skill");
    }
    if has(&q, &["your name", "full name"]) {
        return Outcome::answer("name", p.full_name.clone());
    }
    if has(
        &q,
        &["about yourself", "summary", "headline", "describe yourself"],
    ) {
        return match &p.headline {
            Some(h) => Outcome::answer("headline", h.clone()),
            None => missing("headline", "headline"),
        };
    }
    Outcome::review("none", "no rule understands this question")
}

fn is_generic(word: &str) -> bool {
    matches!(
        word,
        "experience"
            | "professional"
            | "work"
            | "relevant"
            | "industry"
            | "software"
            | "engineering"
            | "programming"
            | "development"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> UserProfileInput {
        UserProfileInput {
            full_name: "Alice Candidate".into(),
            email: "alice@example.com".into(),
            phone: Some("+49 30 1234567".into()),
            location: Some("Berlin, Germany".into()),
            headline: Some("Backend engineer".into()),
            years_experience: Some(7),
            skills: vec!["Rust".into(), "PostgreSQL".into(), "SQL".into()],
            work_authorization: Some("EU citizen".into()),
            requires_sponsorship: Some(false),
            salary_expectation: Some("EUR 85,000".into()),
            notice_period_days: Some(30),
            willing_to_relocate: Some(true),
            remote_preference: Some("remote".into()),
            links: vec![
                "https://github.com/alice".into(),
                "https://www.linkedin.com/in/alice".into(),
            ],
        }
    }

    #[test]
    fn every_kind_of_question_it_understands() {
        let p = profile();
        for (q, rule, contains) in [
            (
                "How many years of experience do you have?",
                "experience",
                "7 years",
            ),
            (
                "How many years of Rust experience do you have?",
                "experience",
                "Rust",
            ),
            (
                "Do you have experience with PostgreSQL?",
                "experience",
                "PostgreSQL",
            ),
            ("Are you familiar with Rust?", "skill", "Rust"),
            (
                "What are your key skills?",
                "skill",
                "Rust, PostgreSQL, SQL",
            ),
            (
                "Are you legally authorized to work in Germany?",
                "work_authorization",
                "EU citizen",
            ),
            (
                "Will you now or in the future require visa sponsorship?",
                "sponsorship",
                "No",
            ),
            ("What are your salary expectations?", "salary", "EUR 85,000"),
            ("What is your notice period?", "notice_period", "30 days"),
            ("When can you start?", "notice_period", "30 days"),
            ("Are you willing to relocate?", "relocation", "Yes"),
            ("Are you open to working on-site?", "remote", "remote"),
            ("Where are you located?", "location", "Berlin"),
            (
                "What is your email address?",
                "contact",
                "alice@example.com",
            ),
            ("What is your phone number?", "contact", "+49"),
            ("Link to your GitHub profile?", "links", "github.com/alice"),
            ("Please share your LinkedIn", "links", "linkedin.com"),
            ("What is your full name?", "name", "Alice Candidate"),
            ("Tell us about yourself", "headline", "Backend engineer"),
        ] {
            let o = answer(q, &p);
            assert_eq!(o.rule, rule, "{q}");
            assert!(
                o.answer.as_deref().is_some_and(|a| a.contains(contains)),
                "{q} → {o:?}"
            );
            assert!(o.review_reason.is_none());
        }
    }

    #[test]
    fn it_never_invents_an_answer() {
        let p = profile();
        for q in [
            "How many years of Go experience do you have?",
            "Are you familiar with Kubernetes?",
            "What is your favourite colour?",
            "Describe a conflict you resolved at work.",
            "Why do you want to work here?",
        ] {
            let o = answer(q, &p);
            assert!(o.answer.is_none(), "{q} was answered: {o:?}");
            assert!(o.review_reason.is_some());
        }
        let empty = UserProfileInput {
            full_name: "X".into(),
            email: "x@example.com".into(),
            ..Default::default()
        };
        for q in [
            "What are your salary expectations?",
            "Do you require sponsorship?",
            "What is your notice period?",
            "Are you willing to relocate?",
            "Link to your GitHub?",
            "How many years of experience do you have?",
            "What is your phone number?",
        ] {
            let o = answer(q, &empty);
            assert!(
                o.answer.is_none(),
                "{q} answered from an empty profile: {o:?}"
            );
            assert!(
                o.review_reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("the profile has no")),
                "{q}: {o:?}"
            );
        }
    }

    #[test]
    fn skills_match_whole_words_longest_first() {
        let p = profile();
        assert!(
            answer("Experience with PostgreSQL?", &p)
                .answer
                .expect("a")
                .contains("PostgreSQL")
        );
        assert!(
            answer("Are you familiar with Rustic frameworks?", &p)
                .answer
                .is_none(),
            "Rust is not Rustic"
        );
    }
}
