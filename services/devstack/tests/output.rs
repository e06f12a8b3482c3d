//! What devstack writes when its output goes to a file, as `devstack > log 2>&1` does: plain text
//! (no terminal colour codes) and, at Ctrl-C, nothing from the mock's test library.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn redirected_output_has_no_colour_codes_and_no_wiremock_shutdown_line() {
    let dir = std::env::temp_dir().join(format!("devstack-output-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .env_clear()
        .env("CLERK_MOCK_BIND", format!("127.0.0.1:{}", free_port()))
        .env("JOBTRACKER_BIND", format!("127.0.0.1:{}", free_port()))
        .env("REPRESENTER_BIND", format!("127.0.0.1:{}", free_port()))
        .env("APPLIER_BIND", format!("127.0.0.1:{}", free_port()))
        .env("DEVSTACK_DATA_DIR", &dir)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("devstack starts");
    // The banner comes once everything is up; all of stdout is read (a closed pipe would make
    // devstack's next print fail).
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (lines, banner_lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut banner = String::new();
    for line in banner_lines.iter() {
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("M2M token as the job-applier") {
            break;
        }
    }
    // Ctrl-C, as a person stops it.
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("exits");
    reader.join().expect("stdout reader");
    banner.extend(banner_lines.try_iter().map(|l| l + "\n"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        interrupted.success() && status.success(),
        "{status}\n{banner}\n{stderr}"
    );
    assert!(
        stderr.contains("jobtracker-api listening"),
        "the services logged:\n{stderr}"
    );
    assert!(
        !stderr.contains('\x1b') && !banner.contains('\x1b'),
        "colour codes in redirected output:\n{stderr:?}"
    );
    assert!(
        !stderr.contains("Mock server shutting down"),
        "wiremock's shutdown line:\n{stderr}"
    );
}

#[test]
fn the_filter_keeps_the_users_directives() {
    assert_eq!(
        devstack::log_filter("info"),
        "info,wiremock::mock_server::hyper=warn"
    );
    assert_eq!(
        devstack::log_filter(""),
        "info,wiremock::mock_server::hyper=warn"
    );
    assert_eq!(
        devstack::log_filter("debug,jobtracker_api=trace"),
        "debug,jobtracker_api=trace,wiremock::mock_server::hyper=warn"
    );
    // Asked for by name: left as it is.
    assert_eq!(devstack::log_filter("wiremock=debug"), "wiremock=debug");
}
