//! Who may do what: one table for routes, one for status transitions.

use jobtracker_types::ApplicationStatus::{self, *};

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A person with a Clerk session.
    User,
    /// The `candidate-representer` bot.
    Representer,
    /// The `job-applier` bot.
    Applier,
}

impl Role {
    /// The role's name in `whoami` (machines only).
    pub fn machine_role_name(self) -> Option<&'static str> {
        match self {
            Self::User => None,
            Self::Representer => Some("candidate-representer"),
            Self::Applier => Some("job-applier"),
        }
    }
}

/// What a role may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing.
    No,
    /// Only the caller's own data.
    Own,
    /// Any user's data.
    Any,
}

/// Every operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Whoami,
    UpsertProfile,
    GetMe,
    GetUser,
    UploadResume,
    ListResumes,
    DeleteResume,
    DownloadResume,
    CreateApplication,
    ListApplications,
    GetApplication,
    ListEvents,
    UpdateStatus,
    Claim,
    ManageLease,
    ListQuestions,
    AnswerQuestion,
}

use Access::{Any, No, Own};

/// The role table of docs/api.md, *Routes and roles*: (action, user, candidate-representer,
/// job-applier).
pub const POLICY: &[(Action, Access, Access, Access)] = &[
    (Action::Whoami, Any, Any, Any),
    (Action::UpsertProfile, Own, No, No),
    (Action::GetMe, Own, No, No),
    (Action::GetUser, Own, Any, Any),
    (Action::UploadResume, Own, No, No),
    (Action::ListResumes, Own, Any, Any),
    (Action::DeleteResume, Own, No, No),
    (Action::DownloadResume, Own, No, Any),
    (Action::CreateApplication, Own, No, No),
    (Action::ListApplications, Own, Any, Any),
    (Action::GetApplication, Own, Any, Any),
    (Action::ListEvents, Own, Any, Any),
    (Action::UpdateStatus, Own, No, Any),
    (Action::Claim, No, No, Any),
    (Action::ManageLease, No, No, Any),
    (Action::ListQuestions, Own, Any, No),
    (Action::AnswerQuestion, Own, Any, No),
];

/// Every `/api` operation and the action it performs: the route table the OpenAPI document is
/// checked against (`tests/api/routes.rs`). Operations of `Action::Whoami` answer any
/// authenticated caller; every other one can refuse (403).
pub const ROUTES: &[(&str, &str, Action)] = &[
    ("get", "/api/whoami", Action::Whoami),
    ("post", "/api/users", Action::UpsertProfile),
    ("get", "/api/users/me", Action::GetMe),
    ("get", "/api/users/{user_id}", Action::GetUser),
    ("post", "/api/users/{user_id}/resumes", Action::UploadResume),
    ("get", "/api/users/{user_id}/resumes", Action::ListResumes),
    (
        "delete",
        "/api/users/{user_id}/resumes/{resume_id}",
        Action::DeleteResume,
    ),
    (
        "get",
        "/api/resumes/{resume_id}/content",
        Action::DownloadResume,
    ),
    ("post", "/api/job-applications", Action::CreateApplication),
    ("get", "/api/job-applications", Action::ListApplications),
    ("get", "/api/job-applications/{id}", Action::GetApplication),
    (
        "get",
        "/api/job-applications/{id}/events",
        Action::ListEvents,
    ),
    (
        "patch",
        "/api/job-applications/{id}/status",
        Action::UpdateStatus,
    ),
    ("post", "/api/job-applications/claim", Action::Claim),
    (
        "put",
        "/api/job-applications/{id}/lease",
        Action::ManageLease,
    ),
    (
        "delete",
        "/api/job-applications/{id}/lease",
        Action::ManageLease,
    ),
    ("get", "/api/questions", Action::ListQuestions),
    (
        "put",
        "/api/job-applications/{id}/questions/{qid}/answer",
        Action::AnswerQuestion,
    ),
];

/// What `role` may reach for `action`.
pub fn access(role: Role, action: Action) -> Access {
    POLICY
        .iter()
        .find(|(a, ..)| *a == action)
        .map(|&(_, user, representer, applier)| match role {
            Role::User => user,
            Role::Representer => representer,
            Role::Applier => applier,
        })
        .unwrap_or(No)
}

/// Status transitions each role may make. The applier's also require its own live lease.
pub const TRANSITIONS: &[(Role, ApplicationStatus, &[ApplicationStatus])] = &[
    (Role::User, Saved, &[Queued, Withdrawn]),
    (Role::User, Queued, &[Saved, Withdrawn]),
    (Role::User, Failed, &[Queued, Withdrawn]),
    (Role::User, Submitted, &[Interviewing, Rejected, Withdrawn]),
    (Role::User, Interviewing, &[Offer, Rejected, Withdrawn]),
    (Role::User, Offer, &[Withdrawn]),
    (Role::Applier, Queued, &[Submitted, Failed]),
];

/// Whether `role` may move an application from `from` to `to`.
pub fn transition_allowed(role: Role, from: ApplicationStatus, to: ApplicationStatus) -> bool {
    TRANSITIONS
        .iter()
        .any(|(r, f, targets)| *r == role && *f == from && targets.contains(&to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_exactly_one_row() {
        for action in [
            Action::Whoami,
            Action::UpsertProfile,
            Action::GetMe,
            Action::GetUser,
            Action::UploadResume,
            Action::ListResumes,
            Action::DeleteResume,
            Action::DownloadResume,
            Action::CreateApplication,
            Action::ListApplications,
            Action::GetApplication,
            Action::ListEvents,
            Action::UpdateStatus,
            Action::Claim,
            Action::ManageLease,
            Action::ListQuestions,
            Action::AnswerQuestion,
        ] {
            assert_eq!(
                POLICY.iter().filter(|(a, ..)| *a == action).count(),
                1,
                "{action:?}"
            );
        }
    }

    #[test]
    fn the_transition_table() {
        assert!(transition_allowed(Role::User, Saved, Queued));
        assert!(transition_allowed(Role::Applier, Queued, Submitted));
        assert!(transition_allowed(Role::Applier, Queued, Failed));
        assert!(
            !transition_allowed(Role::User, Queued, Submitted),
            "only the applier submits"
        );
        assert!(!transition_allowed(Role::Applier, Saved, Submitted));
        assert!(!transition_allowed(Role::Representer, Queued, Submitted));
        assert!(
            !transition_allowed(Role::User, Withdrawn, Queued),
            "withdrawn is final"
        );
        for s in ApplicationStatus::ALL {
            assert!(
                !transition_allowed(Role::User, s, s),
                "no self-transition for {s}"
            );
        }
    }
}
