//! The difference between a declaration and what Clerk holds, as steps. Computing it calls
//! nothing; the caller lists Clerk's machines first.

use std::collections::BTreeMap;

use m2m_core::clerk::Machine;
use serde::Serialize;
use serde_json::{Value, json};

use super::declaration::Declaration;
use crate::CliError;

/// A machine a step names: its name, and its id once it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineRef {
    /// Name at Clerk.
    pub name: String,
    /// `mch_…`, `None` until created.
    pub id: Option<String>,
}

impl std::fmt::Display for MachineRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} ({id})", self.name),
            None => write!(f, "{} (new)", self.name),
        }
    }
}

/// One change to make at Clerk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    /// `POST /machines`.
    CreateMachine {
        /// The declaring service.
        service: String,
        /// Name.
        name: String,
        /// `default_token_ttl`.
        token_ttl: u64,
    },
    /// `PATCH /machines/{id}`.
    UpdateMachine {
        /// The declaring service.
        service: String,
        /// The machine.
        machine: MachineRef,
        /// Its lifetime now.
        from_token_ttl: u64,
        /// Its lifetime as declared.
        to_token_ttl: u64,
    },
    /// `POST /machines/{caller}/scopes`.
    AddScope {
        /// The caller.
        caller: MachineRef,
        /// The receiver.
        receiver: MachineRef,
    },
    /// `DELETE /machines/{caller}/scopes/{receiver}`: destructive.
    RemoveScope {
        /// The caller.
        caller: MachineRef,
        /// The receiver.
        receiver: MachineRef,
    },
    /// `DELETE /machines/{id}` (`--prune` only): destructive.
    DeleteMachine {
        /// The machine.
        machine: MachineRef,
    },
}

impl Step {
    /// Whether it takes away access or a machine (asked about unless `--yes`).
    pub fn is_destructive(&self) -> bool {
        matches!(self, Self::RemoveScope { .. } | Self::DeleteMachine { .. })
    }

    /// One line of the readable diff.
    pub fn line(&self) -> String {
        match self {
            Self::CreateMachine {
                name, token_ttl, ..
            } => format!("+ machine {name} (token lifetime {token_ttl} s)"),
            Self::UpdateMachine {
                machine,
                from_token_ttl,
                to_token_ttl,
                ..
            } => {
                format!("~ machine {machine}: token lifetime {from_token_ttl} s → {to_token_ttl} s")
            }
            Self::AddScope { caller, receiver } => format!("+ scope {caller} → {receiver}"),
            Self::RemoveScope { caller, receiver } => format!(
                "- scope {caller} → {receiver} (and the caller's live tokens valid there are revoked)"
            ),
            Self::DeleteMachine { machine } => format!("- machine {machine}"),
        }
    }
}

/// What `m2m plan` found.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Changes, in the order apply makes them: machines first, then scopes, then deletions.
    pub steps: Vec<Step>,
    /// Declared service → its machine at Clerk, for those that exist.
    pub existing: BTreeMap<String, Machine>,
    /// Machines the file does not name (kept unless `--prune`).
    pub unmanaged: Vec<MachineRef>,
}

impl Plan {
    /// Compares `declaration` with `machines` (every machine of the instance).
    pub fn new(
        declaration: &Declaration,
        machines: &[Machine],
        prune: bool,
    ) -> Result<Self, CliError> {
        let mut by_name: BTreeMap<&str, Vec<&Machine>> = BTreeMap::new();
        for m in machines {
            by_name.entry(m.name.as_str()).or_default().push(m);
        }
        let mut plan = Plan::default();
        for d in &declaration.machines {
            match by_name.get(d.name.as_str()).map(Vec::as_slice) {
                None | Some([]) => plan.steps.push(Step::CreateMachine {
                    service: d.service.clone(),
                    name: d.name.clone(),
                    token_ttl: d.token_ttl,
                }),
                Some([m]) => {
                    if m.default_token_ttl != d.token_ttl {
                        plan.steps.push(Step::UpdateMachine {
                            service: d.service.clone(),
                            machine: reference(m),
                            from_token_ttl: m.default_token_ttl,
                            to_token_ttl: d.token_ttl,
                        });
                    }
                    plan.existing.insert(d.service.clone(), (*m).clone());
                }
                Some(many) => {
                    return Err(CliError(format!(
                        "{} machines at Clerk are named {:?} ({}); machines are matched by name: rename or delete all but one",
                        many.len(),
                        d.name,
                        many.iter()
                            .map(|m| m.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        let reference_of = |service: &str| -> MachineRef {
            let d = declaration
                .machine(service)
                .expect("edges name declared machines");
            MachineRef {
                name: d.name.clone(),
                id: plan.existing.get(service).map(|m| m.id.clone()),
            }
        };
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        for d in &declaration.machines {
            let wanted: Vec<&str> = declaration
                .edges
                .iter()
                .filter(|e| e.caller == d.service)
                .map(|e| e.receiver.as_str())
                .collect();
            let current = plan.existing.get(&d.service);
            for receiver in &wanted {
                let to = reference_of(receiver);
                let has = match (current, &to.id) {
                    (Some(m), Some(id)) => m.scoped_ids().any(|s| s == id),
                    _ => false,
                };
                if !has {
                    adds.push(Step::AddScope {
                        caller: reference_of(&d.service),
                        receiver: to,
                    });
                }
            }
            // The file is the whole truth about a declared machine's scopes.
            if let Some(m) = current {
                for s in &m.scoped_machines {
                    let wanted_here = wanted
                        .iter()
                        .any(|r| plan.existing.get(*r).is_some_and(|x| x.id == s.id));
                    if !wanted_here {
                        removes.push(Step::RemoveScope {
                            caller: reference(m),
                            receiver: MachineRef {
                                name: s.name.clone(),
                                id: Some(s.id.clone()),
                            },
                        });
                    }
                }
            }
        }
        plan.steps.extend(adds);
        plan.steps.extend(removes);
        let declared: Vec<&str> = declaration
            .machines
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        for m in machines {
            if !declared.contains(&m.name.as_str()) {
                plan.unmanaged.push(reference(m));
                if prune {
                    plan.steps.push(Step::DeleteMachine {
                        machine: reference(m),
                    });
                }
            }
        }
        Ok(plan)
    }

    /// The readable diff.
    pub fn text(&self, prune: bool) -> String {
        let mut out: Vec<String> = self.steps.iter().map(Step::line).collect();
        if !prune {
            for m in &self.unmanaged {
                out.push(format!(
                    "  machine {m}: not in the file; kept (--prune deletes it)"
                ));
            }
        }
        let count = |f: fn(&Step) -> bool| self.steps.iter().filter(|s| f(s)).count();
        out.push(if self.steps.is_empty() {
            "No changes: Clerk matches the declaration.".to_owned()
        } else {
            format!(
                "Plan: {} machine(s) to create, {} to update, {} to delete; {} scope(s) to add, {} to remove.",
                count(|s| matches!(s, Step::CreateMachine { .. })),
                count(|s| matches!(s, Step::UpdateMachine { .. })),
                count(|s| matches!(s, Step::DeleteMachine { .. })),
                count(|s| matches!(s, Step::AddScope { .. })),
                count(|s| matches!(s, Step::RemoveScope { .. })),
            )
        });
        out.join("\n")
    }

    /// The plan for scripts.
    pub fn json(&self) -> Value {
        json!({
            "changes": self.steps,
            "unmanaged": self.unmanaged,
            "pending": !self.steps.is_empty(),
        })
    }
}

fn reference(m: &Machine) -> MachineRef {
    MachineRef {
        name: m.name.clone(),
        id: Some(m.id.clone()),
    }
}
