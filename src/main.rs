//! `leanmote-api`: the task ingestion service and its admin commands.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = leanmote_api::cli::Cli::parse();
    leanmote_api::logging::init(cli.log_format);
    let runtime = actix_web::rt::System::new();
    match runtime.block_on(leanmote_api::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
