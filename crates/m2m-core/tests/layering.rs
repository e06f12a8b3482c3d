//! Settings parsing depends on the verification and client types, never the reverse: no file
//! under `src/verify/` or `src/token_source/` names the `config` module (docs/m2m-core.md,
//! *Public API*, "Layers"). A `use crate::config::…` there would close the import cycle
//! config → verify → config again.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn verification_and_client_code_never_import_the_settings_parsers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for layer in ["verify", "token_source"] {
        sources(&src.join(layer), &mut files);
    }
    // Followed by both the token source and the verifier.
    files.push(src.join("machine_key.rs"));
    assert!(files.len() >= 10, "found only {files:?}");
    let mut offenders = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains("crate::config") || code.contains("super::super::config") {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}
