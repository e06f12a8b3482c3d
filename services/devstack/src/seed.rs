//! The mock's seed from the service graph declaration (`deploy/m2m.toml`): the machines devstack
//! and `docker compose` start the mock with are the ones `m2m apply` creates at a real Clerk, so
//! the demo and a real setup share one source of truth. The seed keeps only what a declaration
//! cannot say (fixed ids and demo keys, the instance, users); a test in `crates/e2e` (`graph`)
//! regenerates it and fails on any difference (docs/clerk-mock.md, *Seed*).

use clerk_mock::{MachineSeed, Seed};
use m2m_cli::graph::Declaration;

/// `base` with its machines replaced by the declaration's (those `base` has in its order, then
/// new ones in the declaration's service order, so a regenerated seed diffs only where the
/// declaration changed): each named as
/// declared, with its token lifetime and a scope to each receiver its edges name (by name). A
/// machine `base` already has (same name) keeps its id and key, so the demo keys in
/// `deploy/secrets/demo/` and the ids in `docker-compose.yml` stay valid; a new one gets a fixed
/// id and key derived from its name, so regenerating is deterministic.
pub fn seed_from_declaration(declaration: &Declaration, base: &Seed) -> Seed {
    let mut machines: Vec<MachineSeed> = declaration
        .machines
        .iter()
        .map(|m| {
            let known = base.machines.iter().find(|b| b.name == m.name);
            let scoped_machines = declaration
                .edges
                .iter()
                .filter(|e| e.caller == m.service)
                .filter_map(|e| declaration.machine(&e.receiver))
                .map(|r| r.name.clone())
                .collect();
            MachineSeed {
                id: known
                    .and_then(|k| k.id.clone())
                    .or_else(|| Some(demo_id(&m.name))),
                name: m.name.clone(),
                secret_key: known
                    .and_then(|k| k.secret_key.clone())
                    .or_else(|| Some(demo_key(&m.name))),
                scoped_machines,
                default_token_ttl: Some(m.token_ttl),
            }
        })
        .collect();
    // A stable sort: machines `base` lacks keep the declaration's order, after the known ones.
    machines.sort_by_key(|m| {
        base.machines
            .iter()
            .position(|b| b.name == m.name)
            .unwrap_or(usize::MAX)
    });
    Seed {
        machines,
        ..base.clone()
    }
}

/// `mch_2` and the name's letters and digits, padded with `0` to Clerk's 27 characters.
fn demo_id(name: &str) -> String {
    let mut word: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    word.insert(0, '2');
    word.truncate(27);
    format!("mch_{word:0<27}")
}

/// `ak_<name in snake case>_mock_machine_secret_key_0001`, as the demo keys are named.
fn demo_key(name: &str) -> String {
    let snake: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("ak_{snake}_mock_machine_secret_key_0001")
}

/// The seed as the mock reads it (`CLERK_MOCK_SEED`), pretty-printed, newline-terminated.
pub fn seed_json(seed: &Seed) -> String {
    // A Seed is plain data: serialising it cannot fail.
    let mut text = serde_json::to_string_pretty(seed).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_machines_get_fixed_ids_and_keys_in_the_demo_shape() {
        assert_eq!(
            demo_id("Report.Bot"),
            format!("mch_2ReportBot{}", "0".repeat(17))
        );
        assert_eq!(
            demo_id("A very long machine name beyond the limit").len(),
            4 + 27
        );
        assert_eq!(
            demo_key("Report.Bot"),
            "ak_report_bot_mock_machine_secret_key_0001"
        );
    }
}
