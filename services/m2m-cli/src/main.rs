//! `m2m`: see `m2m --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = m2m_cli::Cli::parse();
    let lookup = |k: &str| std::env::var(k).ok();
    match m2m_cli::run(cli, &lookup, &mut std::io::stdin()).await {
        Ok(out) => {
            println!("{}", out.text);
            // `m2m plan`: 2 = changes pending (Terraform's -detailed-exitcode).
            if out.pending {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("m2m: {e}");
            ExitCode::FAILURE
        }
    }
}
